"""Hydra's own composition errors (an unknown key, an unknown option, an override it cannot parse)
are multi-line blocks ending in a HYDRA_FULL_ERROR hint; composing once before Hydra runs turns
them into one line and exit code 2. Only for plain ``key=value`` command lines: flags and sweeps
(``-m``, ``--cfg job``) go to Hydra untouched."""

from __future__ import annotations

import re

from recexp.config.compose import CONFIG_NAME, conf_dir

_NOISE = re.compile(r"^(full_key:|object_type=|reference_type=|provider=|Config search path:|"
                    r"Set the environment variable HYDRA_FULL_ERROR|See https://hydra\.cc)")


def compose_error(argv: list[str]) -> str | None:
    if not argv or any(a.startswith("-") for a in argv):
        return None
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # inside a Hydra app already (tests): nothing to add
        return None
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            compose(config_name=CONFIG_NAME, overrides=argv)
    except Exception as exc:  # every composition error is the user's command line here
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not _NOISE.match(ln.strip())]
        text = "; ".join(ln.rstrip(".") for ln in lines)
        if "override" not in text and "Could not" not in text:  # a grammar error names no key
            text = f"{text} (in the command line: {' '.join(argv)})"
        text = re.sub(r"Available options in '(\w+)':;", r"options for \1:", text)
        return re.sub(r"; (?=\w+(; |$))", ", ", text) if "options for" in text else text
    return None
