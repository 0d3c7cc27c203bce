"""Named domain errors. The API maps each to Letta's status and body."""


class DomainError(Exception):
    """Base class: a command was refused; nothing was recorded."""


class NotFound(DomainError):
    """The aggregate does not exist, was deleted, or belongs to another organization."""


class InvalidArgument(DomainError):
    """The command's arguments are invalid (Letta's INVALID_ARGUMENT, HTTP 400)."""


class Conflict(DomainError):
    """The command conflicts with the current state (HTTP 409)."""


class Busy(Conflict):
    """Another run holds the conversation; ``run_id`` names it, so a client can attach to it
    instead of guessing (decisions §14).
    """

    def __init__(self, message: str, run_id: str | None) -> None:
        super().__init__(message)
        self.run_id = run_id


class Expired(DomainError):
    """The resource is too old to serve (HTTP 410)."""


class Unavailable(DomainError):
    """The request needs a service that is not configured (HTTP 503)."""


class BadRequest(DomainError):
    """Refused with HTTP 400 and the plain message (Letta's bare ValueError, no code prefix)."""


# Letta's texts for a conversation that cannot take the request.
NOTHING_TO_COMPACT = (
    "Summarization failed to reduce the number of messages. You may not have enough messages "
    "to compact or need to use a different CompactionSettings (e.g. using `all` mode)."
)


BUSY = (
    "Cannot send a new message: Another request is currently being processed for this "
    "conversation. Please wait for the current request to complete."
)


PENDING_APPROVAL = (
    "Cannot send a new message: The agent is waiting for approval on a tool call. Please "
    "approve or deny the pending request before continuing."
)
