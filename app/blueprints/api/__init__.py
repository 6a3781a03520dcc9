"""The JSON API under /api/v1, documented by flask-smorest from the schemas in code.

One module per resource (`nodes.py` holds every /nodes route); its name is the OpenAPI tag of its
routes, and each route's endpoint is its operationId (`nodes_sync`). blueprint.py holds the one
blueprint, its hooks and its error handler; list_routes.py and userdata_routes.py make the routes that
several resources share, each added by name from the resource's module.
"""

from flask import Flask
from flask_smorest import Api

# Importing a resource module adds its routes to the blueprint.
from app.blueprints.api import (  # noqa: F401
    certificates,
    databases,
    dbusers,
    domains,
    firewall,
    mail,
    maildomains,
    nodes,
    operations,
    plans,
    policies,
    scheduler,
    sync,
    users,
    webdomains,
)
from app.blueprints.api.blueprint import RESOURCES, blp
from app.blueprints.api.cross_site import CrossSiteGuardPlugin
from app.blueprints.api.schemas import ApiErrorSchema
from app.extensions import csrf


class HostfleetApi(Api):
    """The API's document: errors are {"error", "fields"}, each route lists the statuses it gives, and the
    routes are grouped by resource (one tag per resource module, not one for the whole blueprint)."""

    ERROR_SCHEMA = ApiErrorSchema
    # No catch-all "default" response: a status a route did not document is a bug the fuzz test finds.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def register_blueprint(self, blp, **options):
        super().register_blueprint(blp, **options)
        # flask-smorest tags a blueprint with its own name; every route here carries its resource's tag instead.
        self.spec._tags[:] = [tag for tag in self.spec._tags if tag["name"] != blp.name]


def register_api(app: Flask) -> None:
    """Register the API blueprint, its resources' tags and its security schemes."""
    # One Api per app: the OpenAPI document is built per application instance.
    api = HostfleetApi(app, spec_kwargs={"extra_plugins": [CrossSiteGuardPlugin()]})
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"basicAuth": []}, {"bearerAuth": []}]
    # The API authenticates every call with credentials in a header, never with the session cookie; what
    # stands in for CSRF tokens there is app/blueprints/api/cross_site.py.
    csrf.exempt(blp)
    api.register_blueprint(blp)
    for resource in sorted(RESOURCES, key=lambda r: r.name):
        api.spec.tag({"name": resource.name, "description": resource.description})
