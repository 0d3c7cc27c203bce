"""Model handles: ``provider/model-name``."""

from domain.errors import InvalidArgument

HANDLE_FORMAT_ERROR = "The model handle should be in the format provider/model-name"


def validate_handle(handle: str | None) -> str | None:
    """Letta's check: both sides of the first ``/`` must be non-empty."""
    if not handle:
        return handle
    provider, _, name = handle.partition("/")
    if not provider or not name:
        raise InvalidArgument(HANDLE_FORMAT_ERROR)
    return handle
