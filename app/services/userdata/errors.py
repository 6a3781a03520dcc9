"""The refusals of user-data requests, and the agent's validators turned into them."""

from __future__ import annotations

from agent import validation as v
from app.services.errors import ServiceError


class UserDataError(ServiceError):
    """A refused user-data request: an HTTP status, a message and the fields at fault."""

    def __init__(self, status: int, message: str, fields: dict[str, str] | None = None):
        super().__init__(message, status=status, fields=fields)

    @property
    def maybe_applied(self) -> bool:
        """True when the node gave no answer to a change it may have acted on (agent_failure's 504): a
        caller keeps its claim or pending mark for the poll, or undoes what it may have made."""
        return self.status == 504


def invalid(field: str, message: str) -> UserDataError:
    """A 400 naming the field."""
    return UserDataError(400, f"invalid {field}: {message}", {field: message})


def object_body(data: object, allowed) -> dict:
    """A JSON object with no unknown fields."""
    try:
        return v.object_fields(data, "body", allowed)
    except v.ValidationError as exc:
        raise invalid(exc.field, exc.message) from None


def validated(func, *args):
    """Run one of the agent's validators, turning its error into a 400 naming the field."""
    try:
        return func(*args)
    except v.ValidationError as exc:
        raise invalid(exc.field, exc.message) from None
