"""System → Firewall: a system-wide list kept identical on every node (each change a distributed request)."""

from flask import Blueprint

from app.blueprints.firewall.forms import FirewallRuleForm
from app.blueprints.system_lists import list_views

bp = Blueprint("firewall", __name__, url_prefix="/system/firewall")

views = list_views("firewall", "firewall", FirewallRuleForm, "firewall/list.html")
bp.add_url_rule("", "index", views.index, methods=["GET", "POST"])
bp.add_url_rule("/<int:row_id>/edit", "edit", views.edit, methods=["GET", "POST"])
bp.add_url_rule("/<int:row_id>/delete", "delete", views.delete, methods=["POST"])
