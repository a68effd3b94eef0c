from recexp.cli import main

raise SystemExit(main())
