"""Software synchronization: install the packages of the node's roles (POST/GET /v1/software)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from agent.roles import validate_roles
from agent.routes.lists import json_body, json_errors
from agent.software import Busy, manager_for

bp = Blueprint("software", __name__, url_prefix="/v1")
json_errors(bp)


@bp.post("/software")
def start():
    """Assign the node's roles and start installing their packages in the background (202)."""
    roles = validate_roles(json_body().get("roles"))
    try:
        status = manager_for(current_app.config["AGENT_CONFIG"]).start(roles)
    except Busy as exc:
        return jsonify(error=str(exc), fields={}), 409
    return jsonify(status), 202


@bp.get("/software")
def show():
    """Per-package progress of the latest installation, and the templates' hashes."""
    return jsonify(manager_for(current_app.config["AGENT_CONFIG"]).status(with_templates=True))
