"""User data owned by this node: users, web domains, DNS zones, mail domains, mailboxes."""

from flask import Blueprint

bp = Blueprint("data", __name__, url_prefix="/v1")
