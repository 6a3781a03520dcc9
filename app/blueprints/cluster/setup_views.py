"""Cluster → Nodes: add a node over SSH (host key first, then confirm), retry, roles, flags, agent update, remove."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from agent.roles import validate_roles
from agent.validation import ValidationError
from app.auth_hooks import admin_required
from app.blueprints.cluster.setup_forms import AddNodeForm, ConfirmNodeForm, RolesForm
from app.blueprints.cluster.views import bp
from app.extensions import db, htmx
from app.models import Node
from app.services import node_lifecycle
from app.services import roles as role_service
from app.services import setup as setup_service


def _redirect(url: str):
    """A redirect that HTMX follows as a full navigation."""
    if htmx:
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)


def _attach(form, errors: dict[str, str]) -> None:
    """Show the service's field errors under the fields (the rest as a form-level error)."""
    for name, message in errors.items():
        target = getattr(form, name, None) if name != "csrf_token" else None
        if target is None:
            form.form_errors.append(f"{name}: {message}")
        else:
            target.errors = [message]


def _fields(form) -> dict:
    return {name: getattr(form, name).data for name in ("name", "address", "ssh_port", "roles", "weight")}


@bp.route("/nodes/add", methods=["GET", "POST"])
@login_required
@admin_required
def add_node():
    """Step 1: name, address, port, roles, weight; on submit the panel reads the node's SSH host key."""
    form = AddNodeForm()
    if request.method == "GET" or not form.validate_on_submit():
        return render_template("cluster/add.html", form=form), 200 if request.method == "GET" else 400
    try:
        data = setup_service.validate_node_input(_fields(form), require_credentials=False)
        key_type, fingerprint = setup_service.fetch_host_key(data.address, data.ssh_port)
    except setup_service.InputErrors as exc:
        _attach(form, exc.fields)
        return render_template("cluster/add.html", form=form), 422
    except setup_service.SetupError as exc:
        _attach(form, {exc.field or "address": exc.message})
        return render_template("cluster/add.html", form=form), exc.status
    confirm = ConfirmNodeForm(formdata=None, data={**_fields(form), "host_key_fingerprint": fingerprint})
    return render_template("cluster/add_confirm.html", form=confirm, key_type=key_type, fingerprint=fingerprint)


@bp.route("/nodes/add/confirm", methods=["POST"])
@login_required
@admin_required
def add_node_confirm():
    """Step 2: with the host key confirmed and the root credential, bootstrap the node and start its setup job."""
    form = ConfirmNodeForm()
    fingerprint = form.host_key_fingerprint.data or ""
    if not form.validate_on_submit():
        return render_template("cluster/add_confirm.html", form=form, fingerprint=fingerprint), 400
    data = {**_fields(form), "host_key_fingerprint": fingerprint, "password": form.password.data,
            "private_key": form.private_key.data}
    try:
        node, _operation = setup_service.add_node(setup_service.validate_node_input(data), user_id=current_user.id,
                                                  data_dir=current_app.config["DATA_DIR"])
    except setup_service.InputErrors as exc:
        _attach(form, exc.fields)
        return render_template("cluster/add_confirm.html", form=form, fingerprint=fingerprint), 422
    except setup_service.SetupError as exc:
        db.session.rollback()
        _attach(form, {exc.field or "address": exc.message})
        return render_template("cluster/add_confirm.html", form=form, fingerprint=fingerprint), exc.status
    return _redirect(url_for("cluster.node", node_id=node.id))


@bp.route("/nodes/<int:node_id>/retry", methods=["POST"])
@login_required
@admin_required
def retry_node(node_id: int):
    """Retry a node in `error` (or whose setup job died)."""
    node = db.get_or_404(Node, node_id)
    try:
        node_lifecycle.retry_node(node, user_id=current_user.id)
    except setup_service.SetupError as exc:
        flash(exc.message)
    return _redirect(url_for("cluster.node", node_id=node.id))


@bp.route("/nodes/<int:node_id>/update-agent", methods=["POST"])
@login_required
@admin_required
def update_agent(node_id: int):
    """One-click agent update over SSH (for `incompatible`)."""
    node = db.get_or_404(Node, node_id)
    try:
        operation = setup_service.start_update_agent(node, user_id=current_user.id)
    except setup_service.SetupError as exc:
        flash(exc.message)
        return _redirect(url_for("cluster.node", node_id=node.id))
    return _redirect(url_for("operations.show", operation_id=operation.id))


@bp.route("/nodes/<int:node_id>/roles", methods=["POST"])
@login_required
@admin_required
def change_roles(node_id: int):
    """New roles for a node: the role synchronizer runs again."""
    node = db.get_or_404(Node, node_id)
    form = RolesForm()
    if not form.validate_on_submit():
        flash("The form expired; reload the page and try again.")
        return _redirect(url_for("cluster.node", node_id=node.id))
    try:
        roles = validate_roles(form.roles.data or [], name_items=False)
    except ValidationError as exc:
        flash(f"Roles: {exc.message}")
        return _redirect(url_for("cluster.node", node_id=node.id))
    if node.is_local or node.setup_pending:
        flash("Roles can change once the node's setup has finished (and not on the local node).")
    elif sorted(roles) != sorted(node.roles or []):
        role_service.change_roles(node, roles, user_id=current_user.id)
        flash(f"Roles of {node.name}: {', '.join(roles) or 'none'}; the role synchronizer runs.")
    return _redirect(url_for("cluster.node", node_id=node.id))


@bp.route("/nodes/<int:node_id>/flags", methods=["POST"])
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
    return _redirect(url_for("cluster.node", node_id=node.id))


@bp.route("/nodes/<int:node_id>/remove", methods=["POST"])
@login_required
@admin_required
def remove_node(node_id: int):
    """Remove a node (refused, with the owners named, while it holds user data)."""
    node = db.get_or_404(Node, node_id)
    name = node.name
    try:
        outcome = node_lifecycle.remove_node(node)
    except node_lifecycle.RemovalRefused as exc:
        flash(str(exc))
        return _redirect(url_for("cluster.node", node_id=node_id))
    flash(f"Node {name} removed; {outcome}.")
    return _redirect(url_for("cluster.nodes"))


@bp.app_context_processor
def _setup_helpers():
    """Templates reach the setup step list and the retry rule."""
    return {"setup_steps": setup_service.setup_steps, "can_retry": setup_service.can_retry,
            "roles_form": RolesForm, "setup_log": _setup_log}


def _setup_log(node: Node) -> str:
    from app.models import Operation

    operation = db.session.get(Operation, node.setup_operation_id) if node.setup_operation_id else None
    if operation is None:
        return ""
    # Until the job starts, its log is the bootstrap's lines it carries.
    return operation.log or "\n".join((operation.params or {}).get("preface") or [])
