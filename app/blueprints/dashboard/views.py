"""Dashboard: what in the cluster needs the administrator, each item linked to the page where it is fixed."""

from flask import Blueprint
from flask_login import login_required

from app.auth_hooks import admin_required
from app.htmx import render
from app.services import dashboard

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.route("")
@login_required
@admin_required
def index():
    """Nodes by state, desyncs, failed and running operations, customers near a limit; the page polls
    itself while an operation runs."""
    nodes = dashboard.nodes_by_state()
    desyncs = dashboard.desyncs()
    failed = dashboard.failed_operations()
    running = dashboard.running_operations()
    near = dashboard.near_limits()
    troubled = [(state, refs) for state, refs in nodes if state != "ready"]
    all_well = not troubled and not desyncs.count and not failed[0] and not near
    return render("dashboard/index.html", "dashboard/_dashboard.html", nodes=nodes, troubled=troubled,
                  desyncs=desyncs, failed=failed, running=running, near=near, all_well=all_well,
                  failed_hours=int(dashboard.FAILED_WITHIN.total_seconds() // 3600),
                  near_percent=dashboard.NEAR_PERCENT)
