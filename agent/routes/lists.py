"""System-wide lists: full replace and read-back (PUT/GET /v1/lists/<name>)."""

from flask import Blueprint

bp = Blueprint("lists", __name__, url_prefix="/v1/lists")
