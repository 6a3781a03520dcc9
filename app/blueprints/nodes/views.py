"""Cluster → Nodes: the list, one node, a check; add a node over SSH (host key first, then confirm),
retry, roles, flags, agent update, remove."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from agent.roles import validate_roles
from agent.validation import ValidationError
from app.auth_hooks import admin_required
from app.blueprints.nodes.forms import AddNodeForm, ConfirmNodeForm, RolesForm
from app.errors import refused, show_errors
from app.extensions import db
from app.htmx import redirect_to, render
from app.listing import Column, ListState, page_of_select
from app.models import Node, NodeState, Operation
from app.services import node_lifecycle, operations
from app.services import roles as role_service
from app.services import setup as setup_service
from app.services.errors import ServiceError

bp = Blueprint("nodes", __name__, url_prefix="/cluster/nodes")


@bp.route("")
@login_required
@admin_required
def index():
    """The node list (?q= searches name and address, ?state= filters by the state shown, ?sort=); the
    table polls itself while a node on the page is changing state."""
    state = ListState.from_request(NODE_COLUMNS, "name", filters=("state",))
    query = select(Node)
    wanted = state.filters.get("state", "")
    ready = Node.state == NodeState.READY.value
    if wanted == "maintenance":
        query = query.where(ready, Node.maintenance.is_(True))
    elif wanted == "users-locked":
        query = query.where(ready, Node.maintenance.is_(False), Node.users_locked.is_(True))
    elif wanted == NodeState.READY.value:
        query = query.where(ready, Node.maintenance.is_(False), Node.users_locked.is_(False))
    elif wanted in {s.value for s in NodeState}:
        query = query.where(Node.state == wanted)
    listing = page_of_select(query, state, NODE_COLUMNS, Node.id, search=(Node.name, Node.address))
    polling = any(n.node_state.in_progress for n in listing.rows)
    return render("nodes/nodes.html", "nodes/_nodes_table.html", nodes=listing.rows, polling=polling,
                  listing=listing, filters=[NODE_STATE_FILTER])


NODE_COLUMNS = (Column("name", "Name", Node.name), Column("state", "State", Node.state, natural=False),
                Column("address", "Address", Node.address), Column("id", "Added", Node.id, natural=False))
NODE_STATE_FILTER = {"name": "state", "label": "State", "options": [
    (s, s) for s in (*(v.value for v in NodeState), "maintenance", "users-locked")]}


@bp.route("/<int:node_id>")
@login_required
@admin_required
def show(node_id: int):
    """One node: figures, flags, desyncs, its state history, and its setup while one runs."""
    node = db.get_or_404(Node, node_id)
    return render("nodes/node.html", "nodes/_node_detail.html", node=node,
                  steps=setup_service.setup_steps(node), setup_log=_setup_log(node),
                  can_retry=setup_service.can_retry(node),
                  roles_form=RolesForm(formdata=None, data={"roles": node.roles or []}))


def _setup_log(node: Node) -> str:
    """The log of the node's setup operation; until its job starts, the bootstrap's lines it carries."""
    operation = db.session.get(Operation, node.setup_operation_id) if node.setup_operation_id else None
    if operation is None:
        return ""
    return operation.log or "\n".join((operation.params or {}).get("preface") or [])


@bp.route("/<int:node_id>/check", methods=["POST"])
@login_required
@admin_required
def check(node_id: int):
    """Poll this node's agent now, as an operation."""
    node = db.get_or_404(Node, node_id)
    operation = operations.start_operation(
        "check_node", f"Check node {node.name}", "check_nodes", user_id=current_user.id, targets=[node]
    )
    return redirect(url_for("operations.show", operation_id=operation.id))


def _fields(form) -> dict:
    return {name: getattr(form, name).data for name in ("name", "address", "ssh_port", "roles", "weight")}


def _refused_input(form, exc: ServiceError) -> int:
    """Show a refusal of a new node under its fields (under the address when it names none: the node
    could not be reached); the page's status: 422 for bad input, else the refusal's."""
    if not exc.fields:
        exc = ServiceError(exc.message, status=exc.status, fields={"address": exc.message})
    show_errors(form, exc)
    return 422 if isinstance(exc, setup_service.InputErrors) else exc.status


@bp.route("/add", methods=["GET", "POST"])
@login_required
@admin_required
def add():
    """Step 1: name, address, port, roles, weight; on submit the panel reads the node's SSH host key."""
    form = AddNodeForm()
    if request.method == "GET" or not form.validate_on_submit():
        return render_template("nodes/add.html", form=form), 200 if request.method == "GET" else 400
    try:
        data = setup_service.validate_node_input(_fields(form), require_credentials=False)
        key_type, fingerprint = setup_service.fetch_host_key(data.address, data.ssh_port)
    except ServiceError as exc:
        status = _refused_input(form, exc)
        return render_template("nodes/add.html", form=form), status
    confirm = ConfirmNodeForm(formdata=None, data={**_fields(form), "host_key_fingerprint": fingerprint})
    return render_template("nodes/add_confirm.html", form=confirm, key_type=key_type, fingerprint=fingerprint)


@bp.route("/add/confirm", methods=["POST"])
@login_required
@admin_required
def add_confirm():
    """Step 2: with the host key confirmed and the root credential, bootstrap the node and start its setup job."""
    form = ConfirmNodeForm()
    fingerprint = form.host_key_fingerprint.data or ""
    if not form.validate_on_submit():
        return render_template("nodes/add_confirm.html", form=form, fingerprint=fingerprint), 400
    data = {**_fields(form), "host_key_fingerprint": fingerprint, "password": form.password.data,
            "private_key": form.private_key.data}
    try:
        node, _operation = setup_service.add_node(setup_service.validate_node_input(data), user_id=current_user.id,
                                                  data_dir=current_app.config["DATA_DIR"])
    except ServiceError as exc:
        db.session.rollback()
        status = _refused_input(form, exc)
        return render_template("nodes/add_confirm.html", form=form, fingerprint=fingerprint), status
    return redirect_to(url_for("nodes.show", node_id=node.id))


@bp.route("/<int:node_id>/retry", methods=["POST"])
@login_required
@admin_required
def retry(node_id: int):
    """Retry a node in `error` (or whose setup job died)."""
    node = db.get_or_404(Node, node_id)
    try:
        node_lifecycle.retry_node(node, user_id=current_user.id)
    except ServiceError as exc:
        flash(exc.message)
    return redirect_to(url_for("nodes.show", node_id=node.id))


@bp.route("/<int:node_id>/update-agent", methods=["POST"])
@login_required
@admin_required
def update_agent(node_id: int):
    """One-click agent update over SSH (for `incompatible`)."""
    node = db.get_or_404(Node, node_id)
    try:
        operation = setup_service.start_update_agent(node, user_id=current_user.id)
    except ServiceError as exc:
        flash(exc.message)
        return redirect_to(url_for("nodes.show", node_id=node.id))
    return redirect_to(url_for("operations.show", operation_id=operation.id))


@bp.route("/<int:node_id>/roles", methods=["POST"])
@login_required
@admin_required
def change_roles(node_id: int):
    """New roles for a node: the role synchronizer runs again."""
    node = db.get_or_404(Node, node_id)
    form = RolesForm()
    if not form.validate_on_submit():
        flash("The form expired; reload the page and try again.")
        return redirect_to(url_for("nodes.show", node_id=node.id))
    try:
        roles = validate_roles(form.roles.data or [], name_items=False)
    except ValidationError as exc:
        flash(f"Roles: {exc.message}")
        return redirect_to(url_for("nodes.show", node_id=node.id))
    if why := role_service.why_roles_fixed(node):
        flash(f"Roles of {node.name} cannot change {why}.")
    elif sorted(roles) != sorted(node.roles or []):
        role_service.change_roles(node, roles, user_id=current_user.id)
        flash(f"Roles of {node.name}: {', '.join(roles) or 'none'}; the role synchronizer runs.")
    return redirect_to(url_for("nodes.show", node_id=node.id))


@bp.route("/<int:node_id>/flags", methods=["POST"])
@login_required
@admin_required
def toggle_flag(node_id: int):
    """Switch maintenance or users_locked on or off."""
    node = db.get_or_404(Node, node_id)
    flag, value = request.form.get("flag"), request.form.get("value")
    if flag not in ("maintenance", "users_locked") or value not in ("on", "off"):
        flash("Unknown flag.")
    else:
        role_service.set_flags(node, **{flag: value == "on"})
    return redirect_to(url_for("nodes.show", node_id=node.id))


@bp.route("/<int:node_id>/remove", methods=["POST"])
@login_required
@admin_required
def remove(node_id: int):
    """Remove a node (refused, with the owners named, while it holds user data)."""
    node = db.get_or_404(Node, node_id)
    name = node.name
    try:
        outcome = node_lifecycle.remove_node(node)
    except ServiceError as exc:
        return refused(exc, back=url_for("nodes.show", node_id=node_id))
    flash(f"Node {name} removed; {outcome}.")
    return redirect_to(url_for("nodes.index"))
