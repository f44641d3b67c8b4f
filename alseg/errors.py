"""The one error type users see for bad input: its message says what is wrong and how to fix it."""


class AlsegError(Exception):
    """Bad input or configuration, reported to the user without a traceback."""
