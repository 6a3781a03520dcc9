"""The start page."""

from flask import Blueprint, redirect, url_for
from flask_login import current_user, login_required

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def index():
    """Administrators start at the dashboard; users at their home page."""
    if current_user.is_admin:
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("home.index"))
