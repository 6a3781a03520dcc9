"""The routes of one system-wide list (firewall, scheduler, mail senders); each resource module names them.

Reading answers the master's copy; every change is a distributed request answered 202 with the
operation to follow (docs/distributed-requests.md).
"""

from __future__ import annotations

from marshmallow import Schema, fields

from app.auth_hooks import admin_required, api_user
from app.blueprints.api.blueprint import Resource, accepted, blp, errors, json_object
from app.services import distributed, lists


class OperationRefSchema(Schema):
    """Where to follow a long-running change."""

    id = fields.Integer(required=True)
    url = fields.String(required=True)


class AcceptedSchema(Schema):
    """202: the change runs as an operation."""

    operation = fields.Nested(OperationRefSchema, required=True)


def submit(name: str, action: str, row_id: int | None = None):
    """Validate and start a distributed request; 4xx and nothing stored on bad input."""
    data = None if action == "delete" else json_object()
    operation = distributed.request_change(name, action, data, row_id=row_id, user_id=api_user().id)
    return accepted(operation)


class ListRoutes:
    """GET/POST /<path> and PUT/DELETE /<path>/<id> for one list, each added by its own call with its name."""

    def __init__(self, resource: Resource, name: str, path: str, row_schema: type[Schema]):
        self.resource = resource
        self.name = name
        self.path = path
        self.row_schema = row_schema
        self.title = lists.LISTS[name].title.lower()

    def _body(self):
        return blp.doc(requestBody={"content": {"application/json": {"schema": self.row_schema}}})

    def list(self, endpoint: str) -> None:
        name = self.name

        class ListSchema(Schema):
            items = fields.List(fields.Nested(self.row_schema), required=True)
            version = fields.Integer(required=True)
            hash = fields.String(required=True)

        ListSchema.__name__ = "".join(lists.LISTS[name].title.split()) + "ListSchema"

        def list_rows():
            return lists.list_to_dict(name)

        list_rows.__doc__ = f"The master's {self.title} list with its version and hash."
        self.resource.route(f"/{self.path}", endpoint, methods=["GET"])(
            blp.response(200, ListSchema)(errors(401, 403)(admin_required(list_rows))))

    def create(self, endpoint: str) -> None:
        name = self.name

        def add_row():
            return submit(name, "add")

        add_row.__doc__ = f"Add a row to the {self.title} list on every node it applies to (distributed request)."
        self.resource.route(f"/{self.path}", endpoint, methods=["POST"])(self._body()(
            blp.response(202, AcceptedSchema)(errors(400, 401, 403)(admin_required(add_row)))))

    def update(self, endpoint: str) -> None:
        name = self.name

        def edit_row(row_id: int):
            return submit(name, "edit", row_id)

        edit_row.__doc__ = f"Replace one row of the {self.title} list everywhere (distributed request)."
        self.resource.route(f"/{self.path}/<int:row_id>", endpoint, methods=["PUT"])(self._body()(
            blp.response(202, AcceptedSchema)(errors(400, 401, 403, 404)(admin_required(edit_row)))))

    def delete(self, endpoint: str) -> None:
        name = self.name

        def delete_row(row_id: int):
            return submit(name, "delete", row_id)

        delete_row.__doc__ = f"Delete one row of the {self.title} list everywhere (distributed request)."
        self.resource.route(f"/{self.path}/<int:row_id>", endpoint, methods=["DELETE"])(
            blp.response(202, AcceptedSchema)(errors(400, 401, 403, 404)(admin_required(delete_row))))
