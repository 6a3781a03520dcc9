"""API: System-wide lists by distributed request: firewall, scheduler, mail sender lists, policies, sync."""

from __future__ import annotations

from flask import abort, jsonify, request, url_for
from marshmallow import Schema, fields
from sqlalchemy import select

from agent.validation import ValidationError
from app.auth_hooks import admin_required, api_user
from app.blueprints.api.views import _errors, blp
from app.extensions import db
from app.models import Desync, Node, Operation
from app.models.base import iso_utc
from app.services import distributed, lists, policy_rules
from app.services.policies import get_policy
from app.services.sync import start_node_sync
from app.services.sync_runners import get_runner
from app.services.synchronizers import SYNCHRONIZERS

LIST_PATHS = {
    "firewall": "firewall",
    "scheduler": "scheduler",
    "mail_whitelist": "mail/whitelist",
    "mail_blacklist": "mail/blacklist",
}


class OperationRefSchema(Schema):
    """Where to follow a long-running change."""

    id = fields.Integer(required=True)
    url = fields.String(required=True)


class AcceptedSchema(Schema):
    """202: the change runs as an operation."""

    operation = fields.Nested(OperationRefSchema, required=True)


class FirewallRowSchema(Schema):
    """A firewall rule (every field is checked by the agent's validators)."""

    id = fields.Integer(dump_only=True)
    action = fields.Raw(metadata={"enum": ["accept", "drop", "reject"]})
    protocol = fields.Raw(metadata={"enum": ["tcp", "udp", "icmp", "any"]})
    ports = fields.Raw(metadata={"description": "22,80,1000-2000; empty: all ports"})
    source = fields.Raw(metadata={"description": "CIDR; empty: any source"})
    comment = fields.Raw()


class SchedulerRowSchema(Schema):
    """A cron entry."""

    id = fields.Integer(dump_only=True)
    schedule = fields.Raw(metadata={"description": "*/5 * * * * or @daily"})
    user = fields.Raw()
    command = fields.Raw()
    comment = fields.Raw()
    enabled = fields.Raw(metadata={"type": "boolean"})


class SenderRowSchema(Schema):
    """A mail sender address or domain."""

    id = fields.Integer(dump_only=True)
    sender = fields.Raw()


ROW_SCHEMAS = {
    "firewall": FirewallRowSchema,
    "scheduler": SchedulerRowSchema,
    "mail_whitelist": SenderRowSchema,
    "mail_blacklist": SenderRowSchema,
}


def _bad_input(exc: ValidationError):
    """400 naming the field."""
    return jsonify(error=f"Invalid {exc.field}: {exc.message}", fields={exc.field: exc.message}), 400


def _accepted(operation: Operation):
    """202 with the operation's URL (SPEC §8.1)."""
    url = url_for("api.get_operation", operation_id=operation.id)
    return jsonify(operation={"id": operation.id, "url": url}), 202, {"Location": url}


def _submit(name: str, action: str, row_id: int | None = None):
    """Validate and start a distributed request; 4xx and nothing stored on bad input."""
    data = None
    if action != "delete":
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return _bad_input(ValidationError("body", "must be a JSON object"))
    try:
        operation = distributed.request_change(name, action, data, row_id=row_id, user_id=api_user().id)
    except ValidationError as exc:
        return _bad_input(exc)
    except lists.RowNotFound as exc:
        db.session.rollback()
        abort(404, str(exc))
    return _accepted(operation)


def _list_routes(name: str, path: str) -> None:
    """GET/POST /<path> and PUT/DELETE /<path>/<id> for one list."""
    schema = ROW_SCHEMAS[name]
    title = lists.LISTS[name].title

    class ListSchema(Schema):
        items = fields.List(fields.Nested(schema), required=True)
        version = fields.Integer(required=True)
        hash = fields.String(required=True)

    ListSchema.__name__ = "".join(title.split()) + "ListSchema"

    def list_rows():
        return lists.list_to_dict(name)

    def add_row():
        return _submit(name, "add")

    def edit_row(row_id: int):
        return _submit(name, "edit", row_id)

    def delete_row(row_id: int):
        return _submit(name, "delete", row_id)

    list_rows.__doc__ = f"The master's {title.lower()} list with its version and hash."
    add_row.__doc__ = f"Add a row to the {title.lower()} list on every node it applies to (distributed request)."
    edit_row.__doc__ = f"Replace one row of the {title.lower()} list everywhere (distributed request)."
    delete_row.__doc__ = f"Delete one row of the {title.lower()} list everywhere (distributed request)."
    endpoint = name
    blp.route(f"/{path}", methods=["GET"], endpoint=f"{endpoint}_list")(
        blp.response(200, ListSchema)(_errors(401, 403)(admin_required(list_rows))))
    blp.route(f"/{path}", methods=["POST"], endpoint=f"{endpoint}_add")(
        blp.doc(requestBody={"content": {"application/json": {"schema": schema}}})(
            blp.response(202, AcceptedSchema)(_errors(400, 401, 403)(admin_required(add_row)))))
    blp.route(f"/{path}/<int:row_id>", methods=["PUT"], endpoint=f"{endpoint}_edit")(
        blp.doc(requestBody={"content": {"application/json": {"schema": schema}}})(
            blp.response(202, AcceptedSchema)(_errors(400, 401, 403, 404)(admin_required(edit_row)))))
    blp.route(f"/{path}/<int:row_id>", methods=["DELETE"], endpoint=f"{endpoint}_delete")(
        blp.response(202, AcceptedSchema)(_errors(400, 401, 403, 404)(admin_required(delete_row))))


for _name, _path in LIST_PATHS.items():
    _list_routes(_name, _path)


class PolicySchema(Schema):
    """Cluster-wide policies."""

    min_ready_percent = fields.Integer(metadata={"minimum": 0, "maximum": 100})
    missed_polls = fields.Integer(metadata={"minimum": 1, "maximum": 100})
    poll_interval_s = fields.Integer(metadata={"minimum": 1, "maximum": 3600})
    placement_resource = fields.String(metadata={"enum": ["disk", "memory", "none"]})
    node_apt_source = fields.String()


@blp.route("/policies", methods=["GET"])
@blp.response(200, PolicySchema)
@_errors(401, 403)
@admin_required
def get_policies():
    """The cluster's policies."""
    return policy_rules.policy_to_dict(get_policy())


@blp.route("/policies", methods=["PUT"])
@blp.doc(requestBody={"content": {"application/json": {"schema": PolicySchema}}})
@blp.response(200, PolicySchema)
@_errors(400, 401, 403)
@admin_required
def put_policies():
    """Change some or all policies; every value is checked, nothing is stored if one is wrong."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _bad_input(ValidationError("body", "must be a JSON object"))
    try:
        return policy_rules.policy_to_dict(policy_rules.update_policy(data))
    except ValidationError as exc:
        return _bad_input(exc)


class DesyncRowSchema(Schema):
    """A desync: a node that may differ from the master for one synchronizer."""

    node_id = fields.Integer(required=True)
    node = fields.String(required=True)
    list = fields.String(required=True)
    since = fields.String(required=True)
    attempts = fields.Integer(required=True)
    next_try_at = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)


class DesyncListSchema(Schema):
    """Lists answer {"items": [...]}."""

    items = fields.List(fields.Nested(DesyncRowSchema), required=True)


class SyncRequestSchema(Schema):
    """Which synchronizers to re-run (all that apply when absent)."""

    lists = fields.List(fields.String())


@blp.route("/sync", methods=["GET"])
@blp.response(200, DesyncListSchema)
@_errors(401, 403)
@admin_required
def list_desyncs():
    """The desync registry: what each node may still differ in from the master."""
    rows = db.session.scalars(select(Desync).order_by(Desync.node_id, Desync.id)).all()
    return {"items": [desync_to_dict(d) for d in rows]}


def desync_to_dict(desync: Desync) -> dict:
    """One registry row as the API shows it."""
    return {
        "node_id": desync.node_id,
        "node": desync.node.name,
        "list": desync.list,
        "since": iso_utc(desync.since),
        "attempts": desync.attempts,
        "next_try_at": iso_utc(desync.next_try_at),
        "last_error": desync.last_error,
    }


@blp.route("/nodes/<int:node_id>/sync", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": SyncRequestSchema}}, "required": False})
@blp.response(202, AcceptedSchema)
@_errors(400, 401, 403, 404)
@admin_required
def sync_node(node_id: int):
    """Re-synchronize a node now: the named lists, or every synchronizer that applies."""
    node = db.session.get(Node, node_id)
    if node is None:
        abort(404, f"No node with id {node_id}.")
    data = request.get_json(silent=True) if request.content_length else {}
    names = None
    if not isinstance(data, dict):
        return _bad_input(ValidationError("body", "must be a JSON object"))
    if "lists" in data:
        names = data["lists"]
        if not isinstance(names, list) or not all(
            isinstance(n, str) and n in SYNCHRONIZERS and get_runner(n) for n in names
        ):
            return _bad_input(ValidationError("lists", f"must be a list of: {', '.join(sorted(lists.LISTS))}"))
    operation = start_node_sync(node, names, api_user().id)
    return _accepted(operation)

