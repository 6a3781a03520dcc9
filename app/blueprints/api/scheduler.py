"""API: the cluster's scheduler (cron) entries, changed on every node by distributed request."""

from marshmallow import Schema, fields

from app.blueprints.api.blueprint import Resource
from app.blueprints.api.list_routes import ListRoutes


class SchedulerRowSchema(Schema):
    """A cron entry."""

    id = fields.Integer(dump_only=True)
    schedule = fields.Raw(metadata={"description": "*/5 * * * * or @daily"})
    user = fields.Raw()
    command = fields.Raw()
    comment = fields.Raw()
    enabled = fields.Raw(metadata={"type": "boolean"})


resource = Resource("scheduler", "Scheduler (cron) entries, the same on every node it applies to")

routes = ListRoutes(resource, "scheduler", "scheduler", SchedulerRowSchema)
routes.list("scheduler_list")
routes.create("scheduler_create")
routes.update("scheduler_update")
routes.delete("scheduler_delete")
