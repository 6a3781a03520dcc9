"""Operations: every background job, live while it runs."""

from flask import Blueprint, abort
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from app.extensions import db
from app.htmx import render
from app.models import Operation

bp = Blueprint("operations", __name__, url_prefix="/operations")
PAGE_SIZE = 100


def _visible(query):
    """Administrators see every operation; users see the ones they started."""
    if current_user.is_admin:
        return query
    return query.where(Operation.created_by_id == current_user.id)


@bp.route("/")
@login_required
def index():
    """The latest operations; the table polls itself while one is queued or running."""
    # Each row shows its starter and every node's outcome: load them with the page, not one query per row.
    query = _visible(select(Operation)).options(joinedload(Operation.created_by), selectinload(Operation.nodes))
    rows = db.session.scalars(query.order_by(Operation.id.desc()).limit(PAGE_SIZE)).all()
    polling = any(not op.op_status.finished for op in rows)
    return render("operations/index.html", "operations/_table.html", operations=rows, polling=polling)


@bp.route("/<int:operation_id>")
@login_required
def show(operation_id: int):
    """One operation: status, per-node outcome and its log."""
    operation = db.get_or_404(Operation, operation_id)
    if not current_user.is_admin and operation.created_by_id != current_user.id:
        abort(404)
    return render("operations/show.html", "operations/_detail.html", operation=operation)
