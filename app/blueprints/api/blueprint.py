"""The one API blueprint, its request hooks, its error answers, and how a resource module adds a route.

Every route belongs to a resource (`Resource("nodes")` in `api/nodes.py`): the route's endpoint and the
OpenAPI operationId are one explicit name that starts with the resource's name (`nodes_sync`), and the
resource's name is the operation's tag. Services refuse a request by raising a ServiceError
(app/services/errors.py); one handler here turns it into `{"error": message, "fields": fields}`.
"""

from __future__ import annotations

import json

from flask import jsonify, request, url_for
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser

from agent.validation import ValidationError
from app.auth_hooks import authenticate_api_request
from app.blueprints.api.cross_site import refuse_cross_site_request
from app.blueprints.api.schemas import ApiErrorSchema
from app.extensions import db
from app.models import Operation
from app.services.errors import ServiceError


class ApiParser(FlaskParser):
    """webargs' parser, with JSON nested deeper than Python's recursion limit taken as bad JSON (400),
    not left to escape as a RecursionError (500)."""

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", "", 0) from None


blp = Blueprint("api", __name__, url_prefix="/api/v1", description="Hostfleet's JSON API")
blp.ARGUMENTS_PARSER = ApiParser()
# A cross-site call is refused before any credential is checked (so it counts no wrong password either).
blp.before_request(refuse_cross_site_request)
blp.before_request(authenticate_api_request)


@blp.errorhandler(ServiceError)
def service_error(exc: ServiceError):
    """A refusal from a service: `{"error": message, "fields": fields}` with its status; nothing is written."""
    db.session.rollback()
    return jsonify(error=exc.message, fields=exc.fields), exc.status


@blp.errorhandler(ValidationError)
def validation_error(exc: ValidationError):
    """A value the agent's validators refused (the master checks list rows and policies with them): 400
    naming the field. The agent imports nothing from app, so its error is not a ServiceError."""
    db.session.rollback()
    return jsonify(error=f"Invalid {exc.field}: {exc.message}", fields={exc.field: exc.message}), 400


class Resource:
    """One resource of the API: its routes are tagged with its name and named `<name>_<action>`."""

    def __init__(self, name: str, description: str):
        self.name = name
        self.description = description
        RESOURCES.append(self)

    def route(self, rule: str, name: str, **options):
        """blp.route for this resource: endpoint `api.<name>`, operationId `<name>`, tag `<resource>`."""
        if not name.startswith(f"{self.name}_"):
            raise ValueError(f"{name}: a {self.name} route's name starts with {self.name}_")

        def decorate(view):
            named = blp.doc(operationId=name)(view)
            blp.route(rule, endpoint=name, tags=[self.name], **options)(named)
            return view

        return decorate


# Every Resource made, in import order; register_api lists them as the document's tags.
RESOURCES: list[Resource] = []


def errors(*codes: int):
    """Document the error answers a route can give (a route that can answer 401 can answer 429: too many
    wrong passwords; the cross-site guard's 403 and 415 are added to every state-changing route)."""

    def decorate(view):
        for code in codes + ((429,) if 401 in codes else ()):
            view = blp.alt_response(code, schema=ApiErrorSchema, description="Error")(view)
        return view

    return decorate


def json_object() -> dict:
    """The request's JSON body, which must be an object (ValidationError naming `body` otherwise)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("body", "must be a JSON object")
    return data


def accepted(operation: Operation, **extra):
    """202 with the operation's URL in the body and in Location (docs/distributed-requests.md)."""
    url = url_for("api.operations_get", operation_id=operation.id)
    return jsonify(operation={"id": operation.id, "url": url}, **extra), 202, {"Location": url}
