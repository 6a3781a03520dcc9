"""Mail → Whitelist and Blacklist: sender lists kept identical on every mail node."""

from flask import Blueprint

from app.blueprints.system.forms import SenderForm
from app.blueprints.system.listviews import register_list_views

bp = Blueprint("mail_lists", __name__, url_prefix="/mail")

for _name, _endpoint in (("mail_whitelist", "whitelist"), ("mail_blacklist", "blacklist")):
    register_list_views(bp, _name, _endpoint, f"/{_endpoint}", SenderForm, "mail_lists/list.html", "system/_list.html")
