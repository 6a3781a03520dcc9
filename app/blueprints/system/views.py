"""System → Firewall and Scheduler; Cluster → Policies; the Synchronization page's actions."""

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required

from agent.validation import ValidationError
from app.auth_hooks import admin_required
from app.blueprints.system.forms import FirewallRuleForm, PolicyForm, SchedulerEntryForm
from app.blueprints.system.listviews import form_error, go_to, register_list_views
from app.extensions import db
from app.htmx import render
from app.models import Desync, Node
from app.queues import enqueue
from app.services import lists
from app.services.policies import get_policy
from app.services.policy_rules import FIELDS, policy_to_dict, update_policy
from app.services.sync import retry_now, start_node_sync

bp = Blueprint("system", __name__)

for _name, _form in (("firewall", FirewallRuleForm), ("scheduler", SchedulerEntryForm)):
    register_list_views(bp, _name, _name, f"/system/{_name}", _form, "system/list.html", "system/_list.html")


@bp.route("/cluster/policies", methods=["GET", "POST"])
@login_required
@admin_required
def policies():
    """The cluster's policies; nothing is stored unless every value is valid."""
    policy = get_policy()
    form = PolicyForm(data=policy_to_dict(policy))
    if form.validate_on_submit():
        try:
            update_policy({key: form[key].data for key in FIELDS if form[key].data is not None})
        except ValidationError as exc:
            db.session.rollback()
            form_error(form, exc)
        else:
            flash("Policies saved.")
            return redirect(url_for("system.policies"))
    status = 400 if form.errors else 200
    return render("cluster/policies.html", "cluster/policies.html", form=form), status


@bp.route("/cluster/sync/<int:desync_id>/retry", methods=["POST"])
@login_required
@admin_required
def sync_retry(desync_id: int):
    """Retry one desync now (its back-off is dropped) through a sync round."""
    desync = db.get_or_404(Desync, desync_id)
    retry_now(desync)
    db.session.commit()
    enqueue("sync_round")
    flash(f"Retrying {desync.list} on {desync.node.name} now.")
    return redirect(url_for("cluster.sync"))


@bp.route("/cluster/sync/nodes/<int:node_id>", methods=["POST"])
@login_required
@admin_required
def sync_node(node_id: int):
    """Re-synchronize one list (form field `list`) or everything on a node, as an operation."""
    node = db.get_or_404(Node, node_id)
    name = request.form.get("list") or None
    if name is not None and name not in lists.LISTS:
        flash(f"Unknown list {name!r}.")
        return redirect(url_for("cluster.sync")), 400
    operation = start_node_sync(node, [name] if name else None, current_user.id)
    return go_to(operation)

