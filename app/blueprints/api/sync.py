"""API: the desync registry: what each node may still differ in from the master (re-sync: POST /nodes/<id>/sync)."""

from marshmallow import Schema, fields
from sqlalchemy import select

from app.auth_hooks import admin_required
from app.blueprints.api.blueprint import Resource, blp, errors
from app.extensions import db
from app.models import Desync
from app.models.base import iso_utc


class DesyncRowSchema(Schema):
    """A desync: a node that may differ from the master for one synchronizer."""

    node_id = fields.Integer(required=True)
    node = fields.String(required=True)
    list = fields.String(required=True)
    since = fields.String(required=True)
    attempts = fields.Integer(required=True)
    next_try_at = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)


class DesyncListSchema(Schema):
    """Lists answer {"items": [...]}."""

    items = fields.List(fields.Nested(DesyncRowSchema), required=True)


resource = Resource("sync", "Synchronization: the desync registry of every node")


@resource.route("/sync", "sync_list", methods=["GET"])
@blp.response(200, DesyncListSchema)
@errors(401, 403)
@admin_required
def sync_list():
    """The desync registry: what each node may still differ in from the master."""
    rows = db.session.scalars(select(Desync).order_by(Desync.node_id, Desync.id)).all()
    return {"items": [desync_to_dict(d) for d in rows]}


def desync_to_dict(desync: Desync) -> dict:
    """One registry row as the API shows it."""
    return {
        "node_id": desync.node_id,
        "node": desync.node.name,
        "list": desync.list,
        "since": iso_utc(desync.since),
        "attempts": desync.attempts,
        "next_try_at": iso_utc(desync.next_try_at),
        "last_error": desync.last_error,
    }
