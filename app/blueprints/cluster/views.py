"""Cluster → Nodes and Synchronization."""


from flask import Blueprint, redirect, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from app.auth_hooks import admin_required
from app.extensions import db
from app.htmx import render
from app.models import Desync, Node
from app.models.base import as_utc, utcnow
from app.services import operations
from app.services.lists import LISTS

bp = Blueprint("cluster", __name__, url_prefix="/cluster")


@bp.route("/nodes")
@login_required
@admin_required
def nodes():
    """The node list; the table polls itself while any node is changing state."""
    rows = db.session.scalars(select(Node).order_by(Node.id)).all()
    polling = any(n.node_state.in_progress for n in rows)
    return render("cluster/nodes.html", "cluster/_nodes_table.html", nodes=rows, polling=polling)


@bp.route("/nodes/<int:node_id>")
@login_required
@admin_required
def node(node_id: int):
    """One node: figures, flags, desyncs and its state history."""
    node = db.get_or_404(Node, node_id)
    return render("cluster/node.html", "cluster/_node_detail.html", node=node)


@bp.route("/nodes/<int:node_id>/check", methods=["POST"])
@login_required
@admin_required
def check(node_id: int):
    """Poll this node's agent now, as an operation."""
    node = db.get_or_404(Node, node_id)
    operation = operations.start_operation(
        "check_node", f"Check node {node.name}", "check_nodes", user_id=current_user.id, targets=[node]
    )
    return redirect(url_for("operations.show", operation_id=operation.id))


@bp.route("/sync")
@login_required
@admin_required
def sync():
    """The desync registry: what each node may still differ in from the master."""
    rows = db.session.scalars(select(Desync).order_by(Desync.node_id, Desync.id)).all()
    nodes = db.session.scalars(select(Node).order_by(Node.id)).all()
    return render("cluster/sync.html", "cluster/_sync_table.html", desyncs=rows, nodes=nodes, list_names=list(LISTS))


@bp.app_template_filter("ago")
def ago(moment) -> str:
    """A compact "12 s ago" for timestamps."""
    if moment is None:
        return "never"
    seconds = int((utcnow() - as_utc(moment)).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return moment.strftime("%Y-%m-%d %H:%M")


from app.blueprints.cluster import setup_views  # noqa: E402,F401  (routes on bp: add a node, roles, flags)
