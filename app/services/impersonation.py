"""Administrators logged in as a customer (docs/security.md, "Logging in as a customer"): who may, and the
record of each start and end on the Operations page."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Operation, OperationStatus, User
from app.models.base import utcnow
from app.services.errors import ConflictError, ServiceError

STARTED = "login_as"
ENDED = "login_as_end"


def check_may_log_in_as(admin: User, subject: User) -> None:
    """Refuse (ServiceError) unless an active administrator asks to become an active customer."""
    if not admin.is_admin or not admin.active:
        raise ServiceError("Only administrators may log in as a user.", status=403)
    if subject.is_admin:
        raise ConflictError(f"{subject.name} is an administrator: only customers can be logged in as.")
    if not subject.active:
        raise ConflictError(f"{subject.name} is suspended and cannot log in, so neither can an administrator "
                            "as them: resume the account first (its page shows everything it holds).")


def record(kind: str, admin: User, subject: User, address: str | None, how: str = "") -> Operation:
    """One finished operation started by the administrator (customers never see it: they see only their
    own operations): who, as whom, when, from which address."""
    address = address or "an unknown address"
    if kind == STARTED:
        title = f"{admin.name} logged in as {subject.name} from {address}"
    else:
        title = f"{admin.name} left the session as {subject.name} ({how}) from {address}"
    now = utcnow()
    operation = Operation(kind=kind, title=title[:255], created_by_id=admin.id, started_at=now, finished_at=now,
                          status=OperationStatus.SUCCEEDED.value, message=title,
                          params={"user_id": subject.id, "user": subject.name, "admin": admin.name,
                                  "address": address})
    db.session.add(operation)
    db.session.commit()
    return operation


def history(subject: User, limit: int = 10) -> list[Operation]:
    """The latest starts and ends of administrators' sessions as this user, newest first."""
    return list(db.session.scalars(
        select(Operation).where(Operation.kind.in_((STARTED, ENDED)),
                                Operation.params["user_id"].as_integer() == subject.id)
        .order_by(Operation.id.desc()).limit(limit)))
