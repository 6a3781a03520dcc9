"""Cluster → Synchronization: what each node may still differ in from the master, retry and re-sync."""

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from app.auth_hooks import admin_required
from app.blueprints.system_lists import go_to
from app.extensions import db
from app.htmx import render
from app.models import Desync, Node
from app.queues import enqueue
from app.services import lists
from app.services.sync import retry_now, start_node_sync

bp = Blueprint("sync", __name__, url_prefix="/cluster/sync")


@bp.route("")
@login_required
@admin_required
def index():
    """The desync registry: what each node may still differ in from the master."""
    rows = db.session.scalars(select(Desync).order_by(Desync.node_id, Desync.id)).all()
    nodes = db.session.scalars(select(Node).order_by(Node.id)).all()
    return render("sync/sync.html", "sync/_sync_table.html", desyncs=rows, nodes=nodes, list_names=list(lists.LISTS))


@bp.route("/<int:desync_id>/retry", methods=["POST"])
@login_required
@admin_required
def retry(desync_id: int):
    """Retry one desync now (its back-off is dropped) through a sync round."""
    desync = db.get_or_404(Desync, desync_id)
    retry_now(desync)
    db.session.commit()
    enqueue("sync_round")
    flash(f"Retrying {desync.list} on {desync.node.name} now.")
    return redirect(url_for("sync.index"))


@bp.route("/nodes/<int:node_id>", methods=["POST"])
@login_required
@admin_required
def node(node_id: int):
    """Re-synchronize one list (form field `list`) or everything on a node, as an operation."""
    node = db.get_or_404(Node, node_id)
    name = request.form.get("list") or None
    if name is not None and name not in lists.LISTS:
        flash(f"Unknown list {name!r}.")
        return redirect(url_for("sync.index")), 400
    operation = start_node_sync(node, [name] if name else None, current_user.id)
    return go_to(operation)
