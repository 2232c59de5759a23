"""Errors a user can cause. The CLI prints them as one line and exits 2."""


class BlastuneError(Exception):
    """A user-facing error: the message says what was wrong and what is allowed."""


class NotControllableError(BlastuneError):
    """Raised by ``limit(..., strict=True)`` for a library whose threads cannot change at run
    time."""


class NotControllableWarning(UserWarning):
    """A loaded BLAS ignores run-time thread limits; the message names the env var to set
    instead."""
