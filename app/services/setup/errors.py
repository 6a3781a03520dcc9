"""What setting a node up raises: a failed step or connection, bad input, a changed host key."""

from __future__ import annotations

import paramiko


class SetupError(Exception):
    """A setup step or connection failed; `field` names the input at fault for forms and the API."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422, step: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.step = step


class InputErrors(Exception):
    """Bad input for a new node: {field: why}."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class HostKeyMismatch(paramiko.SSHException):
    """The node presented another host key than the pinned one."""

    def __init__(self, expected: str, got: str):
        super().__init__(f"host key {got} does not match the pinned {expected}")
        self.expected = expected
        self.got = got
