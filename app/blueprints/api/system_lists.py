"""API: System-wide lists by distributed request: firewall, scheduler, mail sender lists, policies, sync."""

from app.blueprints.api.views import blp  # noqa: F401
