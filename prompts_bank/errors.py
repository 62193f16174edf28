"""The one error type the CLI turns into a single clear line on stderr and a non-zero exit."""


class BaasError(Exception):
    """A user-facing error: bad input, a missing file, a corrupt store entry. The message is the whole story."""


class DataError(BaasError):
    """A dataset could not be found or one of its rows is malformed."""
