"""API: operations: the status and per-node outcome of every long-running change."""

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.auth_hooks import api_user
from app.blueprints.api.blueprint import Resource, blp, errors
from app.blueprints.api.schemas import OperationListSchema, OperationSchema
from app.extensions import db
from app.models import Operation
from app.services.errors import NotFoundError
from app.services.operations import operation_summary_to_dict, operation_to_dict, outcome_summaries, visible_to

resource = Resource("operations", "Long-running changes: status and the outcome on each node")


def visible_operations():
    """The operations the caller may see."""
    return visible_to(select(Operation), api_user())


@resource.route("/operations", "operations_list")
@blp.response(200, OperationListSchema)
@errors(401)
def operations_list():
    """The latest 100 operations the caller may see, each with its outcome counts; every target is
    listed when there are few, otherwise those that did not apply (GET /operations/<id> has them all)."""
    query = visible_operations().options(joinedload(Operation.created_by))
    rows = db.session.scalars(query.order_by(Operation.id.desc()).limit(100)).all()
    summaries = outcome_summaries([op.id for op in rows])
    return {"items": [operation_summary_to_dict(op, summaries[op.id]) for op in rows]}


@resource.route("/operations/<int:operation_id>", "operations_get")
@blp.response(200, OperationSchema)
@errors(401, 404)
def operations_get(operation_id: int):
    """One operation's status and per-node outcome."""
    operation = db.session.scalar(visible_operations().where(Operation.id == operation_id))
    if operation is None:
        raise NotFoundError(f"No operation with id {operation_id}.")
    return operation_to_dict(operation)
