"""API: Cluster membership: adding nodes over SSH, roles, flags, removal."""

from app.blueprints.api.views import blp  # noqa: F401
