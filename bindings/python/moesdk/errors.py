"""Exceptions raised for the library's statuses (moe_status in moe.h).

Every failed call raises a subclass of ``Error`` whose message is the library's own
(``moe_last_error_message()``, naming the argument, file, tensor or key at fault) and whose
``status`` is the numeric code. Invalid arguments are also ``ValueError`` and memory
exhaustion also ``MemoryError``, so generic handlers catch them too.
"""


class Error(Exception):
    """A call into the MoE SDK failed."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status

    @property
    def status_name(self):
        """The status's fixed name, e.g. ``"MOE_ERR_FORMAT"``."""
        from ._moesdk import status_string

        return status_string(self.status)

    def __reduce__(self):
        return (type(self), (self.status, str(self)))


class InvalidArgumentError(Error, ValueError):
    """An argument is null, out of range or inconsistent (MOE_ERR_INVALID_ARGUMENT)."""


class IoError(Error):
    """A file could not be opened, read or written (MOE_ERR_IO)."""


class FormatError(Error):
    """A file or input is malformed (MOE_ERR_FORMAT)."""


class UnsupportedError(Error):
    """Valid, but this build, backend or plugin cannot do it (MOE_ERR_UNSUPPORTED)."""


class OutOfMemoryError(Error, MemoryError):
    """An allocation failed (MOE_ERR_OUT_OF_MEMORY)."""


class BackendError(Error):
    """A backend operation failed (MOE_ERR_BACKEND)."""


class PluginError(Error):
    """No usable plugin, or a plugin was rejected (MOE_ERR_PLUGIN)."""


class CancelledError(Error):
    """A callback asked to stop (MOE_ERR_CANCELLED)."""


class LimitError(Error):
    """A configured limit (sequence length, batch, bytes) was exceeded (MOE_ERR_LIMIT)."""


class NotFoundError(Error):
    """A named thing (file, tensor, key, plugin) does not exist (MOE_ERR_NOT_FOUND)."""


class InternalError(Error):
    """A bug in the library: please report it with the message (MOE_ERR_INTERNAL)."""


# Status values are fixed forever (moe_common.h).
_BY_STATUS = {
    1: InvalidArgumentError,
    2: IoError,
    3: FormatError,
    4: UnsupportedError,
    5: OutOfMemoryError,
    6: BackendError,
    7: PluginError,
    8: CancelledError,
    9: LimitError,
    10: NotFoundError,
    11: InternalError,
}


def from_status(status, message):
    """The exception for a status; a status newer than this module gives a plain ``Error``."""
    return _BY_STATUS.get(status, Error)(status, message)
