"""The routes of one kind of user data, proxied to the node that holds it; each resource module names them.

Every route reads the caller from the API credentials; what they may see is decided from the master's
index (owner), never from the URL or the body. Argument schemas are given as instances: given a class,
webargs builds a new schema (copying its fields) on every request.
"""

from __future__ import annotations

from app.auth_hooks import api_user
from app.blueprints.api.blueprint import Resource, blp, errors
from app.blueprints.api.schemas_userdata import PageArgsSchema
from app.services import userdata


class UserDataRoutes:
    """List, create, get, update and delete for one kind, each added by its own call with its name."""

    def __init__(self, resource: Resource, kind: str, in_schema, out_schema, list_schema):
        self.resource = resource
        self.kind = kind
        self.label = userdata.KINDS[kind].label
        self.body = blp.arguments(in_schema())
        self.out_schema = out_schema
        self.list_schema = list_schema

    def list(self, name: str) -> None:
        kind = self.kind

        def list_items(args):
            items, total = userdata.list_full(kind, api_user(), args["page"], args["per_page"])
            return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}

        list_items.__doc__ = (f"One page of the {self.label}s the caller may see, by name, with details from "
                              "their nodes, and the total.")
        self.resource.route(f"/{kind}", name)(blp.arguments(PageArgsSchema(), location="query")(
            blp.response(200, self.list_schema)(errors(401, 422)(list_items))))

    def create(self, name: str) -> None:
        kind = self.kind

        def create_item(data):
            return userdata.create(kind, api_user(), data)

        create_item.__doc__ = f"Create a {self.label} on the node holding the owner's role."
        self.resource.route(f"/{kind}", name, methods=["POST"])(self.body(blp.response(201, self.out_schema)(
            errors(400, 401, 403, 404, 409, 422, 502, 503, 504)(create_item))))

    def get(self, name: str) -> None:
        kind = self.kind

        def show_item(item_id: int):
            return userdata.show(kind, api_user(), item_id)

        show_item.__doc__ = f"One {self.label}, read from its node."
        self.resource.route(f"/{kind}/<int:item_id>", name)(
            blp.response(200, self.out_schema)(errors(401, 404, 409, 503)(show_item)))

    def update(self, name: str) -> None:
        kind = self.kind

        def update_item(data, item_id: int):
            return userdata.update(kind, api_user(), item_id, data)

        update_item.__doc__ = f"Change a {self.label} on its node."
        self.resource.route(f"/{kind}/<int:item_id>", name, methods=["PUT"])(self.body(blp.response(
            200, self.out_schema)(errors(400, 401, 403, 404, 409, 502, 503, 504)(update_item))))

    def delete(self, name: str) -> None:
        kind = self.kind

        def delete_item(item_id: int):
            userdata.delete(kind, api_user(), item_id)
            return "", 204

        delete_item.__doc__ = f"Delete a {self.label} on its node, then from the index."
        self.resource.route(f"/{kind}/<int:item_id>", name, methods=["DELETE"])(
            blp.response(204)(errors(401, 404, 409, 502, 503, 504)(delete_item)))
