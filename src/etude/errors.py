"""Errors a user can act on. The CLI prints them as one line on stderr and exits with code 2."""


class EtudeError(Exception):
    """Base class for every error meant for the user rather than a traceback."""


class InputError(EtudeError):
    """A path, file or corpus that cannot be used as given."""


class ConfigError(EtudeError):
    """An unknown setting, a bad value, or settings that contradict each other."""


class CheckpointError(EtudeError):
    """A run folder or checkpoint that is missing, corrupt or does not fit the data."""
