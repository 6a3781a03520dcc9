"""Home: a customer's start page: their usage against each limit, their sites and their latest operations."""

from flask import Blueprint
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.htmx import render
from app.models import Operation, WebDomainIndex
from app.models.cluster import NodeState
from app.services import users
from app.services.operations import visible_to

bp = Blueprint("home", __name__)
LATEST_OPERATIONS = 10


def site_state(row: WebDomainIndex) -> str:
    """A site's state in a customer's words (the node that serves it is not named)."""
    if row.claimed_at is not None:
        return "being created"
    if row.node.maintenance:
        return "under maintenance"
    return "online" if row.node.state == NodeState.READY.value else "unavailable"


@bp.route("/home")
@login_required
def index():
    """The signed-in user's usage of each limit (the API's numbers), their sites and latest operations."""
    sites = db.session.scalars(select(WebDomainIndex).options(joinedload(WebDomainIndex.node))
                               .where(WebDomainIndex.owner_id == current_user.id)
                               .order_by(WebDomainIndex.name)).all()
    operations = db.session.scalars(visible_to(select(Operation), current_user)
                                    .order_by(Operation.id.desc()).limit(LATEST_OPERATIONS)).all()
    return render("home/index.html", "home/_home.html", usage=users.usage(current_user),
                  sites=[{"id": s.id, "name": s.name, "state": site_state(s), "address": s.node.address,
                          "creating": s.claimed_at is not None} for s in sites],
                  operations=operations)
