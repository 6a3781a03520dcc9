"""The JSON API under /api/v1, documented by flask-smorest from the schemas in code."""

from flask import Flask
from flask_smorest import Api

from app.blueprints.api.cross_site import CrossSiteGuardPlugin
from app.blueprints.api.schemas import ApiErrorSchema
from app.extensions import csrf


class HostfleetApi(Api):
    """The API's document: errors are {"error", "fields"}, and each route lists the statuses it gives."""

    ERROR_SCHEMA = ApiErrorSchema
    # No catch-all "default" response: a status a route did not document is a bug the fuzz test finds.
    DEFAULT_ERROR_RESPONSE_NAME = None


def register_api(app: Flask) -> None:
    """Register the API blueprints and their security schemes."""
    # Each menu area adds its routes to the one API blueprint from its own module.
    from app.blueprints.api import cluster_setup, plans, system_lists, user_data  # noqa: F401
    from app.blueprints.api.views import blp

    # One Api per app: the OpenAPI document is built per application instance.
    api = HostfleetApi(app, spec_kwargs={"extra_plugins": [CrossSiteGuardPlugin()]})
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"basicAuth": []}, {"bearerAuth": []}]
    # The API authenticates every call with credentials in a header, never with the session cookie; what
    # stands in for CSRF tokens there is app/blueprints/api/cross_site.py.
    csrf.exempt(blp)
    api.register_blueprint(blp)
