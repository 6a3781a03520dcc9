"""API: User data proxied to the node that holds it: users, web domains, domain names, mail."""

from app.blueprints.api.views import blp  # noqa: F401
