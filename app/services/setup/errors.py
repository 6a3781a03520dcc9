"""What setting a node up raises: a failed step or connection, bad input, a changed host key."""

from __future__ import annotations

import paramiko

from app.services.errors import ServiceError


class SetupError(ServiceError):
    """A setup step or connection failed; `field` names the input at fault for forms and the API."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422, step: int | None = None):
        super().__init__(message, status=status, fields={field: message} if field else None)
        self.field = field
        self.step = step


class InputErrors(ServiceError):
    """Bad input for a node: {field: why}, answered 422 naming the fields."""

    status = 422

    def __init__(self, fields: dict[str, str]):
        super().__init__("Invalid input: " + ", ".join(sorted(fields)), fields=fields)


class HostKeyMismatch(paramiko.SSHException):
    """The node presented another host key than the pinned one."""

    def __init__(self, expected: str, got: str):
        super().__init__(f"host key {got} does not match the pinned {expected}")
        self.expected = expected
        self.got = got
