"""Errors a user can act on. The CLI prints them (no traceback) and exits with status 2."""


class DarkActionError(Exception):
    """Base class: the message says what went wrong, with which file, and what to do."""


class ConfigError(DarkActionError):
    """A config file or override is invalid (unknown key, wrong type)."""


class DataError(DarkActionError):
    """A dataset, list file or video cannot be used."""


class NotImplementedYet(DarkActionError):
    """A feature that is planned but not implemented; never faked."""
