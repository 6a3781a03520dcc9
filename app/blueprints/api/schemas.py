"""Marshmallow schemas: the API's shapes, which also generate the OpenAPI document."""

from marshmallow import Schema, fields


class ApiErrorSchema(Schema):
    """Every 4xx answer: a message and, for bad input, the fields that are wrong and why."""

    error = fields.String(required=True)
    fields = fields.Dict(keys=fields.String(), values=fields.String())


class DesyncSchema(Schema):
    """A list on which the node may differ from the master."""

    list = fields.String(required=True)
    since = fields.String(required=True)
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)


class NodeStatsSchema(Schema):
    """The latest figures reported by the node's agent."""

    load = fields.Float(allow_none=True)
    memory_used_percent = fields.Float(allow_none=True)
    disk_used_percent = fields.Float(allow_none=True)
    disk_free = fields.Integer(allow_none=True)
    uptime_s = fields.Float(allow_none=True)


class NodeSchema(Schema):
    """A cluster node."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    address = fields.String(required=True)
    state = fields.String(
        required=True,
        metadata={"enum": ["new", "connecting", "installing", "syncing", "ready", "unavailable", "incompatible",
                           "error"]},
    )
    roles = fields.List(fields.String(), required=True)
    weight = fields.Integer(required=True)
    is_local = fields.Boolean(required=True)
    maintenance = fields.Boolean(required=True)
    users_locked = fields.Boolean(required=True)
    last_seen = fields.String(allow_none=True, required=True)
    agent_version = fields.String(allow_none=True)
    stats = fields.Nested(NodeStatsSchema, allow_none=True)
    desyncs = fields.List(fields.Nested(DesyncSchema), required=True)


class NodeListSchema(Schema):
    """Lists answer {"items": [...]}."""

    items = fields.List(fields.Nested(NodeSchema), required=True)


class OperationNodeSchema(Schema):
    """An operation's outcome on one node."""

    node_id = fields.Integer(allow_none=True)
    node = fields.String(required=True)
    outcome = fields.String(required=True, metadata={"enum": ["pending", "applied", "failed", "unavailable"]})
    error = fields.String(allow_none=True)


class OperationSchema(Schema):
    """A background job and its per-node outcome."""

    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.String(
        required=True,
        metadata={"enum": ["queued", "running", "succeeded", "partial", "failed", "refused"]},
    )
    message = fields.String(required=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    nodes = fields.List(fields.Nested(OperationNodeSchema), required=True)


class OperationSummarySchema(OperationSchema):
    """An operation in a list: outcome counts; `nodes` holds every target only when `nodes_complete`
    (few targets), otherwise the ones that did not apply."""

    outcomes = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    nodes_complete = fields.Boolean(required=True)


class OperationListSchema(Schema):
    """Lists answer {"items": [...]}."""

    items = fields.List(fields.Nested(OperationSummarySchema), required=True)
