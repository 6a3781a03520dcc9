"""API: the cluster's nodes: list and show, add over SSH, setup progress, roles, flags, agent update,
retry, re-synchronization and removal."""

from __future__ import annotations

from flask import current_app, jsonify, request
from marshmallow import Schema, fields
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from agent import validation
from agent.roles import validate_roles
from app.auth_hooks import admin_required, api_user
from app.blueprints.api.blueprint import Resource, accepted, blp, errors
from app.blueprints.api.list_routes import AcceptedSchema
from app.blueprints.api.schemas import NodeListSchema, NodeSchema
from app.extensions import db
from app.models import Node
from app.services import lists, node_lifecycle
from app.services import roles as role_service
from app.services import setup as setup_service
from app.services.errors import ConflictError, NotFoundError
from app.services.nodes import node_to_dict
from app.services.sync import start_node_sync
from app.services.sync_runners import get_runner
from app.services.synchronizers import SYNCHRONIZERS

resource = Resource("nodes", "The cluster's servers: membership, setup, roles, flags and synchronization")


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


class RemovedSchema(Schema):
    """A removed node."""

    removed = fields.String(required=True, metadata={"description": "the node's name"})
    node = fields.String(required=True, metadata={"description": "what was undone on the server, or what to run there"})


class SyncRequestSchema(Schema):
    """Which synchronizers to re-run (all that apply when absent)."""

    lists = fields.List(fields.String())


def node_or_404(node_id: int) -> Node:
    """The node with this id."""
    node = db.session.get(Node, node_id)
    if node is None:
        raise NotFoundError(f"No node with id {node_id}.")
    return node


def input_object() -> dict:
    """The JSON body of a node route, which must be an object (422 naming `body` otherwise)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise setup_service.InputErrors({"body": "must be a JSON object"})
    return data


@resource.route("/nodes", "nodes_list")
@blp.response(200, NodeListSchema)
@errors(401, 403)
@admin_required
def nodes_list():
    """List the cluster's nodes."""
    # Each item lists the node's desyncs: loaded with the list, not one query per node.
    rows = db.session.scalars(select(Node).options(selectinload(Node.desyncs)).order_by(Node.id)).all()
    return {"items": [node_to_dict(n) for n in rows]}


@resource.route("/nodes/<int:node_id>", "nodes_get")
@blp.response(200, NodeSchema)
@errors(401, 403, 404)
@admin_required
def nodes_get(node_id: int):
    """One node with its state, roles, flags and desyncs."""
    return node_to_dict(node_or_404(node_id))


@resource.route("/nodes", "nodes_create", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": NodeAddSchema}}})
@blp.response(202, description="The node is being set up: follow the operation")
@errors(401, 403, 409, 422)
@admin_required
def nodes_create():
    """Add a node over SSH: steps 1-3 now with the root credential, the rest as a setup job (202)."""
    data = input_object()
    unknown = sorted(set(data) - set(NodeAddSchema().fields))
    if unknown:
        raise setup_service.InputErrors({k: "unknown field" for k in unknown})
    node_input = setup_service.validate_node_input(data)
    node, operation = setup_service.add_node(node_input, user_id=api_user().id,
                                             data_dir=current_app.config["DATA_DIR"])
    return accepted(operation, node=node_to_dict(node))


@resource.route("/nodes/<int:node_id>", "nodes_update", methods=["PATCH"])
@blp.doc(requestBody={"content": {"application/json": {"schema": NodeChangeSchema}}})
@blp.response(200, description="Flags or weight changed; 202 with an operation when roles changed")
@errors(401, 403, 404, 409, 422)
@admin_required
def nodes_update(node_id: int):
    """Change a node's roles (202, the role synchronizer runs), flags or weight (200)."""
    node = node_or_404(node_id)
    changes = validate_changes(input_object())
    why = role_service.why_roles_fixed(node)
    if "roles" in changes and why:
        raise ConflictError(f"{node.name}'s roles cannot change {why}", fields={"roles": f"cannot change {why}"})
    if "weight" in changes:
        node.weight = changes["weight"]
    role_service.set_flags(node, maintenance=changes.get("maintenance"), users_locked=changes.get("users_locked"))
    if "roles" in changes and sorted(changes["roles"]) != sorted(node.roles or []):
        return accepted(role_service.change_roles(node, changes["roles"], user_id=api_user().id),
                        node=node_to_dict(node))
    db.session.commit()
    return jsonify(node_to_dict(node)), 200


def validate_changes(data: dict) -> dict:
    """The PATCH body checked field by field; raises InputErrors."""
    problems: dict[str, str] = {}
    changes: dict = {}
    unknown = sorted(set(data) - set(NodeChangeSchema().fields))
    for key in unknown:
        problems[key] = "unknown field"
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
                problems[key] = exc.message
    if problems:
        raise setup_service.InputErrors(problems)
    return changes


@resource.route("/nodes/<int:node_id>", "nodes_delete", methods=["DELETE"])
@blp.response(200, RemovedSchema, description="Removed; `node` says what was undone on the server")
@errors(401, 403, 404, 409)
@admin_required
def nodes_delete(node_id: int):
    """Remove a node, taking the agent and the master's key off it; refused (409) while it holds user data."""
    node = node_or_404(node_id)
    name = node.name
    return {"removed": name, "node": node_lifecycle.remove_node(node)}


@resource.route("/nodes/<int:node_id>/update-agent", "nodes_update_agent", methods=["POST"])
@blp.response(202, description="The agent is being reinstalled: follow the operation")
@errors(401, 403, 404, 409)
@admin_required
def nodes_update_agent(node_id: int):
    """Reinstall the master's agent on the node over SSH (one click for `incompatible`)."""
    return accepted(setup_service.start_update_agent(node_or_404(node_id), user_id=api_user().id))


@resource.route("/nodes/<int:node_id>/retry", "nodes_retry", methods=["POST"])
@blp.response(202, description="Setup or the role synchronizer runs again: follow the operation")
@errors(401, 403, 404, 409)
@admin_required
def nodes_retry(node_id: int):
    """Retry a node in `error` (or whose setup job died): setup if unfinished, else its roles."""
    return accepted(node_lifecycle.retry_node(node_or_404(node_id), user_id=api_user().id))


@resource.route("/nodes/<int:node_id>/setup", "nodes_setup", methods=["GET"])
@blp.response(200, NodeSetupSchema)
@errors(401, 403, 404)
@admin_required
def nodes_setup(node_id: int):
    """The node's 8 setup steps, its setup operation and the software installation progress."""
    return setup_service.setup_to_dict(node_or_404(node_id))


@resource.route("/nodes/<int:node_id>/sync", "nodes_sync", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": SyncRequestSchema}}, "required": False})
@blp.response(202, AcceptedSchema)
@errors(400, 401, 403, 404)
@admin_required
def nodes_sync(node_id: int):
    """Re-synchronize a node now: the named lists, or every synchronizer that applies."""
    node = node_or_404(node_id)
    data = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(data, dict):
        raise validation.ValidationError("body", "must be a JSON object")
    names = None
    if "lists" in data:
        names = data["lists"]
        if not isinstance(names, list) or not all(
            isinstance(n, str) and n in SYNCHRONIZERS and get_runner(n) for n in names
        ):
            raise validation.ValidationError("lists", f"must be a list of: {', '.join(sorted(lists.LISTS))}")
    return accepted(start_node_sync(node, names, api_user().id))
