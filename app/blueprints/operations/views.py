"""Operations: every background job, live while it runs; searched, filtered by status, sorted and paged."""

from flask import Blueprint, abort, flash, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from agent.validation import ValidationError
from app.auth_hooks import admin_required
from app.blueprints.system_lists import retry_url
from app.errors import refused
from app.extensions import db
from app.htmx import redirect_to, render
from app.listing import Column, ListState, page_of_select
from app.models import Operation, OperationStatus
from app.services import distributed, lists
from app.services.errors import ServiceError
from app.services.operations import LIST_NODES_NAMED, outcome_summaries, visible_to

bp = Blueprint("operations", __name__, url_prefix="/operations")
# The table is large and grows: every column is ordered by the database (none naturally).
COLUMNS = (Column("id", "#", Operation.id, natural=False), Column("title", "What", Operation.title, natural=False),
           Column("created", "When", Operation.created_at, natural=False),
           Column("status", "Status", Operation.status, natural=False))
STATUS_FILTER = {"name": "status", "label": "Status", "options": [(s.value, s.value) for s in OperationStatus]}


@bp.route("/")
@login_required
def index():
    """The operations the caller may see, latest first (?q= searches title and message, ?status=
    filters); the table polls itself while one on the page is queued or running."""
    state = ListState.from_request(COLUMNS, "id", default_desc=True, filters=("status",))
    # Each row shows its starter (loaded with the page) and its outcomes: counts, and the nodes worth
    # naming (a change to 100 nodes would otherwise be 100 badges per row).
    query = visible_to(select(Operation), current_user).options(joinedload(Operation.created_by))
    if state.filters.get("status") in {s.value for s in OperationStatus}:
        query = query.where(Operation.status == state.filters["status"])
    listing = page_of_select(query, state, COLUMNS, Operation.id, search=(Operation.title, Operation.message))
    rows = listing.rows
    polling = any(not op.op_status.finished for op in rows)
    return render("operations/index.html", "operations/_table.html", operations=rows, polling=polling,
                  summaries=outcome_summaries([op.id for op in rows]), named=LIST_NODES_NAMED, listing=listing,
                  filters=[STATUS_FILTER])


@bp.route("/<int:operation_id>")
@login_required
def show(operation_id: int):
    """One operation: status, per-node outcome and its log; a failed change of a list offers Retry, its
    form filled in with what was sent."""
    operation = db.session.scalar(visible_to(select(Operation), current_user).where(Operation.id == operation_id))
    if operation is None:
        abort(404)
    retryable = (current_user.is_admin and operation.kind == "list_change"
                 and operation.status in ("failed", "refused"))
    return render("operations/show.html", "operations/_detail.html", operation=operation, retryable=retryable,
                  retry=retry_url(operation) if current_user.is_admin else None)


@bp.route("/<int:operation_id>/retry", methods=["POST"])
@login_required
@admin_required
def retry(operation_id: int):
    """A failed or refused change to a system-wide list, asked again as it was asked; the browser follows
    the new operation (or stays here with why it could not be asked again)."""
    operation = db.session.get(Operation, operation_id)
    if operation is None:
        abort(404)
    back = url_for("operations.show", operation_id=operation_id)
    try:
        new = distributed.retry_change(operation, current_user.id)
    except (ValidationError, lists.RowNotFound) as exc:
        db.session.rollback()
        flash(f"Not retried: {exc}. Change it on its list's page instead.")
        return redirect_to(back, code=303)
    except ServiceError as exc:
        db.session.rollback()
        return refused(exc, back=back)
    flash(f"Retried as operation #{new.id}.")
    return redirect_to(url_for("operations.show", operation_id=new.id), code=303)
