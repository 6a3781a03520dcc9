"""Mail → Whitelist: senders every mail node accepts, a system-wide list (each change a distributed request)."""

from flask import Blueprint

from app.blueprints.mail_whitelist.forms import SenderForm
from app.blueprints.system_lists import list_views

bp = Blueprint("mail_whitelist", __name__, url_prefix="/mail/whitelist")

views = list_views("mail_whitelist", "mail_whitelist", SenderForm, "mail_whitelist/list.html")
bp.add_url_rule("", "index", views.index, methods=["GET", "POST"])
bp.add_url_rule("/<int:row_id>/edit", "edit", views.edit, methods=["GET", "POST"])
bp.add_url_rule("/<int:row_id>/delete", "delete", views.delete, methods=["POST"])
