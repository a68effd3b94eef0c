"""Errors a user can cause. The CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """A mistake in the input (config value, data file, environment) the user can fix."""


class DataError(UserError):
    """A data file is missing or malformed; the message names the file (and line)."""


class ConfigError(UserError):
    """A config key has a value that cannot work; the message names the key."""


class NonFiniteLoss(UserError):
    """Training diverged: the loss became NaN or infinite."""


def validation_error(where: str, exc: Exception, cls: type[UserError] = ConfigError) -> UserError:
    """One line from a pydantic ``ValidationError``: the file (``where``), the field, its value and
    what was expected; further problems are counted, not listed."""
    errs = exc.errors()  # type: ignore[attr-defined]
    e = errs[0]
    field = ".".join(str(p) for p in e["loc"])
    more = f" (and {len(errs) - 1} more problem{'s' * (len(errs) > 2)})" if len(errs) > 1 else ""
    if e["type"] == "missing":
        return cls(f"{where}: missing key {field!r}{more}")
    if e["type"] == "extra_forbidden":
        return cls(f"{where}: unknown key {field!r}{more}")
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "cross_field":  # a check across fields: its message names them
        return cls(f"{where}: {field + '.' if field else ''}{msg}{more}")
    value = repr(e.get("input"))
    value = value if len(value) <= 80 else value[:77] + "..."
    return cls(f"{where}: {field}={value}: {msg}{more}")
