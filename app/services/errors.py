"""The one error family services raise: an HTTP status, a message for people, and the fields at fault.

Pages show `message` as a flash (or each of `fields` under its form field); the API answers
`{"error": message, "fields": fields}` with `status`. Every refusal a service makes is a ServiceError
or one of its subclasses below, so a view or API route needs no handler of its own.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A refused or failed request: `status` (HTTP), `message`, and `fields` ({field: why})."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.fields = dict(fields or {})


class NotFoundError(ServiceError):
    """What the request names does not exist (or is not the caller's to see)."""

    status = 404


class ConflictError(ServiceError):
    """The request collides with what exists (a name taken, a node holding data)."""

    status = 409
