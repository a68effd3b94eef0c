"""Errors a user can cause. The CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """A mistake in the input (config value, data file, environment) the user can fix."""


class DataError(UserError):
    """A data file is missing or malformed; the message names the file (and line)."""


class ConfigError(UserError):
    """A config key has a value that cannot work; the message names the key."""


class NonFiniteLoss(UserError):
    """Training diverged: the loss became NaN or infinite."""
