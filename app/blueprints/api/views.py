"""API routes: nodes and operations."""

import json

from flask import abort
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from webargs.flaskparser import FlaskParser

from app.auth_hooks import admin_required, api_user, authenticate_api_request
from app.blueprints.api.cross_site import refuse_cross_site_request
from app.blueprints.api.schemas import (
    ApiErrorSchema,
    NodeListSchema,
    NodeSchema,
    OperationListSchema,
    OperationSchema,
)
from app.extensions import db
from app.models import Node, Operation
from app.services.nodes import node_to_dict
from app.services.operations import operation_summary_to_dict, operation_to_dict, outcome_summaries


class ApiParser(FlaskParser):
    """webargs' parser, with JSON nested deeper than Python's recursion limit taken as bad JSON (400),
    not left to escape as a RecursionError (500)."""

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", "", 0) from None


blp = Blueprint("api", __name__, url_prefix="/api/v1", description="Hostfleet's JSON API")
blp.ARGUMENTS_PARSER = ApiParser()
# A cross-site call is refused before any credential is checked (so it counts no wrong password either).
blp.before_request(refuse_cross_site_request)
blp.before_request(authenticate_api_request)


def _errors(*codes: int):
    """Document the error answers a route can give (a route that can answer 401 can answer 429: too many
    wrong passwords; the cross-site guard's 403 and 415 are added to every state-changing route)."""

    def decorate(view):
        for code in codes + ((429,) if 401 in codes else ()):
            view = blp.alt_response(code, schema=ApiErrorSchema, description="Error")(view)
        return view

    return decorate


@blp.route("/nodes")
@blp.response(200, NodeListSchema)
@_errors(401, 403)
@admin_required
def list_nodes():
    """List the cluster's nodes."""
    # Each item lists the node's desyncs: loaded with the list, not one query per node.
    rows = db.session.scalars(select(Node).options(selectinload(Node.desyncs)).order_by(Node.id)).all()
    return {"items": [node_to_dict(n) for n in rows]}


@blp.route("/nodes/<int:node_id>")
@blp.response(200, NodeSchema)
@_errors(401, 403, 404)
@admin_required
def get_node(node_id: int):
    """One node with its state, roles, flags and desyncs."""
    node = db.session.get(Node, node_id)
    if node is None:
        abort(404, f"No node with id {node_id}.")
    return node_to_dict(node)


def _visible_operations():
    user = api_user()
    query = select(Operation)
    if not user.is_admin:
        query = query.where(Operation.created_by_id == user.id)
    return query


@blp.route("/operations")
@blp.response(200, OperationListSchema)
@_errors(401)
def list_operations():
    """The latest 100 operations the caller may see, each with its outcome counts; every target is
    listed when there are few, otherwise those that did not apply (GET /operations/<id> has them all)."""
    query = _visible_operations().options(joinedload(Operation.created_by))
    rows = db.session.scalars(query.order_by(Operation.id.desc()).limit(100)).all()
    summaries = outcome_summaries([op.id for op in rows])
    return {"items": [operation_summary_to_dict(op, summaries[op.id]) for op in rows]}


@blp.route("/operations/<int:operation_id>")
@blp.response(200, OperationSchema)
@_errors(401, 404)
def get_operation(operation_id: int):
    """One operation's status and per-node outcome."""
    operation = db.session.scalar(_visible_operations().where(Operation.id == operation_id))
    if operation is None:
        abort(404, f"No operation with id {operation_id}.")
    return operation_to_dict(operation)
