"""``recexp datasets``: each dataset config, the file it needs, and whether it is present."""

from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from recexp.config.compose import conf_dir
from recexp.data.prepare import default_data_dir


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="recexp datasets", description=__doc__)
    ap.add_argument("--data-dir", default=None, help="folder to look in (default: $RECEXP_DATA_DIR or ./data)")
    args = ap.parse_args(argv)
    root = default_data_dir() if args.data_dir is None else Path(args.data_dir)
    table = Table(title=f"datasets (data dir: {root})")
    for col in ("name", "format", "file", "present", "download (sha256)"):
        table.add_column(col)
    for path in sorted((conf_dir() / "dataset").glob("*.yaml")):
        ds = OmegaConf.load(path)
        file = ds.get("file")
        present = "generated" if ds.get("format") == "synthetic" else (
            "yes" if file and file != "???" and (root / str(file)).is_file() else "no")
        dl = ds.get("download") or {}
        src = f"{dl.get('url', '')} ({'pinned' if dl.get('sha256') else 'not pinned'})" if dl.get("url") else "-"
        table.add_row(path.stem, str(ds.get("format")), str(file or "-"), present, src)
    Console().print(table)
    return 0
