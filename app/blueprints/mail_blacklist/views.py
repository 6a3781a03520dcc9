"""Mail → Blacklist: senders every mail node refuses, a system-wide list (each change a distributed request)."""

from flask import Blueprint

from app.blueprints.mail_blacklist.forms import SenderForm
from app.blueprints.system_lists import list_views

bp = Blueprint("mail_blacklist", __name__, url_prefix="/mail/blacklist")

views = list_views("mail_blacklist", "mail_blacklist", SenderForm, "mail_blacklist/list.html")
bp.add_url_rule("", "index", views.index, methods=["GET", "POST"])
bp.add_url_rule("/<int:row_id>/edit", "edit", views.edit, methods=["GET", "POST"])
bp.add_url_rule("/<int:row_id>/delete", "delete", views.delete, methods=["POST"])
