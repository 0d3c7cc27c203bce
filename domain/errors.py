"""Named domain errors. The API maps each to Letta's status and body."""


class DomainError(Exception):
    """Base class: a command was refused; nothing was recorded."""


class NotFound(DomainError):
    """The aggregate does not exist, was deleted, or belongs to another organization."""


class InvalidArgument(DomainError):
    """The command's arguments are invalid (Letta's INVALID_ARGUMENT, HTTP 400)."""


class Conflict(DomainError):
    """The command conflicts with the current state (HTTP 409)."""
