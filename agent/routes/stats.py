"""Node statistics for the master's statistics collector (GET /v1/stats)."""

from flask import Blueprint, current_app, jsonify

from agent.routes.lists import held_lists
from agent.stats import RoleChecker, collect

bp = Blueprint("stats", __name__, url_prefix="/v1")
_role_checker = RoleChecker()


@bp.get("/stats")
def show():
    """Versions, load, memory, disk, role packages and list versions of this node."""
    config = current_app.config["AGENT_CONFIG"]
    document = collect(config, current_app.config["STARTED_AT"], _role_checker)
    # A list edited behind the agent's back reports a hash the master cannot match: it re-pushes.
    document["lists"] = held_lists(config)
    return jsonify(document)
