"""Operations: every background job, live while it runs."""

from flask import Blueprint, abort
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.htmx import render
from app.models import Operation
from app.services.operations import LIST_NODES_NAMED, outcome_summaries, visible_to

bp = Blueprint("operations", __name__, url_prefix="/operations")
PAGE_SIZE = 100


@bp.route("/")
@login_required
def index():
    """The latest operations; the table polls itself while one is queued or running."""
    # Each row shows its starter (loaded with the page) and its outcomes: counts, and the nodes worth
    # naming (a change to 100 nodes would otherwise be 100 badges per row).
    query = visible_to(select(Operation), current_user).options(joinedload(Operation.created_by))
    rows = db.session.scalars(query.order_by(Operation.id.desc()).limit(PAGE_SIZE)).all()
    polling = any(not op.op_status.finished for op in rows)
    return render("operations/index.html", "operations/_table.html", operations=rows, polling=polling,
                  summaries=outcome_summaries([op.id for op in rows]), named=LIST_NODES_NAMED)


@bp.route("/<int:operation_id>")
@login_required
def show(operation_id: int):
    """One operation: status, per-node outcome and its log."""
    operation = db.session.scalar(visible_to(select(Operation), current_user).where(Operation.id == operation_id))
    if operation is None:
        abort(404)
    return render("operations/show.html", "operations/_detail.html", operation=operation)
