"""API: Cluster membership: adding nodes over SSH, setup progress, roles, flags, agent update, removal."""

from __future__ import annotations

from flask import current_app, jsonify, request, url_for
from marshmallow import Schema, fields

from agent import validation
from agent.roles import validate_roles
from app.auth_hooks import admin_required, api_user
from app.blueprints.api.views import _errors, blp
from app.extensions import db
from app.models import Node, Operation
from app.services import node_lifecycle
from app.services import roles as role_service
from app.services import setup as setup_service
from app.services.nodes import node_to_dict


class NodeAddSchema(Schema):
    """A node to add over SSH; the password or private key is used once and never stored."""

    name = fields.Raw(required=True, metadata={"type": "string", "description": "lower-case host label"})
    address = fields.Raw(required=True, metadata={"type": "string", "description": "IP address or host name"})
    ssh_port = fields.Raw(metadata={"type": "integer", "default": 22})
    password = fields.Raw(load_only=True, metadata={"type": "string", "description": "root password (or private_key)"})
    private_key = fields.Raw(load_only=True,
                             metadata={"type": "string", "description": "root's private key, OpenSSH/PEM"})
    roles = fields.Raw(metadata={"type": "array", "items": {"type": "string", "enum": ["web", "dns", "mail", "db"]}})
    weight = fields.Raw(metadata={"type": "integer", "default": 100})
    host_key_fingerprint = fields.Raw(required=True, metadata={
        "type": "string", "description": "SHA256:... of the node's SSH host key; the node's key must match"})


class NodeChangeSchema(Schema):
    """Roles (re-runs the role synchronizer), flags and weight of a node."""

    roles = fields.Raw(metadata={"type": "array", "items": {"type": "string"}})
    maintenance = fields.Raw(metadata={"type": "boolean"})
    users_locked = fields.Raw(metadata={"type": "boolean"})
    weight = fields.Raw(metadata={"type": "integer"})


class SetupStepSchema(Schema):
    """One of the 8 setup steps."""

    n = fields.Integer(required=True)
    title = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["done", "running", "failed", "pending"]})


class NodeSetupSchema(Schema):
    """A node's setup steps and software installation progress."""

    node_id = fields.Integer(required=True)
    state = fields.String(required=True)
    pending = fields.Boolean(required=True)
    steps = fields.List(fields.Nested(SetupStepSchema), required=True)
    error = fields.String(allow_none=True)
    operation = fields.Dict(allow_none=True)
    software = fields.Dict(allow_none=True)
    can_retry = fields.Boolean(required=True)


def _error(status: int, message: str, field_errors: dict[str, str] | None = None):
    """The API's error shape."""
    return jsonify(error=message, fields=field_errors or {}), status


def _setup_error(exc: setup_service.SetupError):
    return _error(exc.status, exc.message, {exc.field: exc.message} if exc.field else {})


class RemovedSchema(Schema):
    """A removed node."""

    removed = fields.String(required=True, metadata={"description": "the node's name"})
    node = fields.String(required=True, metadata={"description": "what was undone on the server, or what to run there"})


def _accepted(operation: Operation, node: Node | None = None):
    url = url_for("api.get_operation", operation_id=operation.id)
    body = {"operation": {"id": operation.id, "url": url}}
    if node is not None:
        body["node"] = node_to_dict(node)
    return jsonify(body), 202, {"Location": url}


def _body() -> dict | None:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else None


def _node_or_404(node_id: int):
    node = db.session.get(Node, node_id)
    if node is None:
        return None, _error(404, f"No node with id {node_id}.")
    return node, None


@blp.route("/nodes", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": NodeAddSchema}}})
@blp.response(202, description="The node is being set up: follow the operation")
@_errors(401, 403, 409, 422)
@admin_required
def add_node():
    """Add a node over SSH: steps 1-3 now with the root credential, the rest as a setup job (202)."""
    data = _body()
    if data is None:
        return _error(422, "Invalid input: body", {"body": "must be a JSON object"})
    unknown = sorted(set(data) - set(NodeAddSchema().fields))
    if unknown:
        return _error(422, "Invalid input: " + ", ".join(unknown), {k: "unknown field" for k in unknown})
    try:
        node_input = setup_service.validate_node_input(data)
        node, operation = setup_service.add_node(node_input, user_id=api_user().id,
                                                 data_dir=current_app.config["DATA_DIR"])
    except setup_service.InputErrors as exc:
        return _error(422, "Invalid input: " + ", ".join(sorted(exc.fields)), exc.fields)
    except setup_service.SetupError as exc:
        db.session.rollback()
        return _setup_error(exc)
    return _accepted(operation, node)


@blp.route("/nodes/<int:node_id>", methods=["PATCH"])
@blp.doc(requestBody={"content": {"application/json": {"schema": NodeChangeSchema}}})
@blp.response(200, description="Flags or weight changed; 202 with an operation when roles changed")
@_errors(401, 403, 404, 409, 422)
@admin_required
def change_node(node_id: int):
    """Change a node's roles (202, the role synchronizer runs), flags or weight (200)."""
    node, missing = _node_or_404(node_id)
    if missing:
        return missing
    data = _body()
    if data is None:
        return _error(422, "Invalid input: body", {"body": "must be a JSON object"})
    try:
        changes = validate_changes(data)
    except setup_service.InputErrors as exc:
        return _error(422, "Invalid input: " + ", ".join(sorted(exc.fields)), exc.fields)
    if "roles" in changes and (node.is_local or node.setup_pending):
        why = "on the local node" if node.is_local else "before its setup finished"
        return _error(409, f"{node.name}'s roles cannot change {why}", {"roles": f"cannot change {why}"})
    if "weight" in changes:
        node.weight = changes["weight"]
    role_service.set_flags(node, maintenance=changes.get("maintenance"), users_locked=changes.get("users_locked"))
    if "roles" in changes and sorted(changes["roles"]) != sorted(node.roles or []):
        return _accepted(role_service.change_roles(node, changes["roles"], user_id=api_user().id), node)
    db.session.commit()
    return jsonify(node_to_dict(node)), 200


def validate_changes(data: dict) -> dict:
    """The PATCH body checked field by field; raises InputErrors."""
    errors: dict[str, str] = {}
    changes: dict = {}
    unknown = sorted(set(data) - set(NodeChangeSchema().fields))
    for key in unknown:
        errors[key] = "unknown field"
    checks = {
        "roles": lambda v: validate_roles(v, name_items=False),
        "maintenance": lambda v: validation.boolean(v, "maintenance"),
        "users_locked": lambda v: validation.boolean(v, "users_locked"),
        "weight": lambda v: validation.integer(v, "weight", 1, 1000),
    }
    for key, check in checks.items():
        if key in data:
            try:
                changes[key] = check(data[key])
            except validation.ValidationError as exc:
                errors[key] = exc.message
    if errors:
        raise setup_service.InputErrors(errors)
    return changes


@blp.route("/nodes/<int:node_id>", methods=["DELETE"])
@blp.response(200, RemovedSchema, description="Removed; `node` says what was undone on the server")
@_errors(401, 403, 404, 409)
@admin_required
def delete_node(node_id: int):
    """Remove a node, taking the agent and the master's key off it; refused (409) while it holds user data."""
    node, missing = _node_or_404(node_id)
    if missing:
        return missing
    name = node.name
    try:
        outcome = node_lifecycle.remove_node(node)
    except node_lifecycle.RemovalRefused as exc:
        return _error(409, str(exc))
    return {"removed": name, "node": outcome}


@blp.route("/nodes/<int:node_id>/update-agent", methods=["POST"])
@blp.response(202, description="The agent is being reinstalled: follow the operation")
@_errors(401, 403, 404, 409)
@admin_required
def update_agent(node_id: int):
    """Reinstall the master's agent on the node over SSH (one click for `incompatible`)."""
    node, missing = _node_or_404(node_id)
    if missing:
        return missing
    try:
        return _accepted(setup_service.start_update_agent(node, user_id=api_user().id))
    except setup_service.SetupError as exc:
        return _setup_error(exc)


@blp.route("/nodes/<int:node_id>/retry", methods=["POST"])
@blp.response(202, description="Setup or the role synchronizer runs again: follow the operation")
@_errors(401, 403, 404, 409)
@admin_required
def retry_node(node_id: int):
    """Retry a node in `error` (or whose setup job died): setup if unfinished, else its roles."""
    node, missing = _node_or_404(node_id)
    if missing:
        return missing
    try:
        return _accepted(node_lifecycle.retry_node(node, user_id=api_user().id))
    except setup_service.SetupError as exc:
        return _setup_error(exc)


@blp.route("/nodes/<int:node_id>/setup", methods=["GET"])
@blp.response(200, NodeSetupSchema)
@_errors(401, 403, 404)
@admin_required
def node_setup(node_id: int):
    """The node's 8 setup steps, its setup operation and the software installation progress."""
    node, missing = _node_or_404(node_id)
    if missing:
        return missing
    return setup_service.setup_to_dict(node)
