"""The start page and the menus that are not built yet."""

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.menus import PLANNED

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def index():
    """Administrators start at the cluster; users at their sites."""
    if current_user.is_admin:
        return redirect(url_for("cluster.nodes"))
    return redirect(url_for("domains.webdomains"))


@bp.route("/menu/<slug>")
@login_required
def planned(slug: str):
    """A menu that exists in the sidebar but is not built yet: say so plainly."""
    item = PLANNED.get(slug)
    if item is None or (item.admin_only and not current_user.is_admin):
        abort(404)
    return render_template("main/planned.html", item=item)
