"""Errors a user can act on. The CLI prints them as one line on stderr and exits with code 2."""


class EtudeError(Exception):
    """Base class for every error meant for the user rather than a traceback."""


class InputError(EtudeError):
    """A path, file or corpus that cannot be used as given."""


class ConfigError(EtudeError):
    """An unknown setting, a bad value, or settings that contradict each other. `option`, where
    one setting is at fault, names it as the command line does ("--top-p"), so that a caller with
    other names for its settings (the studio's request fields) can point at it."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class CheckpointError(EtudeError):
    """A run folder or checkpoint that is missing, corrupt or does not fit the data."""
