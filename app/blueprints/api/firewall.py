"""API: the cluster's firewall rules, changed on every node by distributed request."""

from marshmallow import Schema, fields

from app.blueprints.api.blueprint import Resource
from app.blueprints.api.list_routes import ListRoutes


class FirewallRowSchema(Schema):
    """A firewall rule (every field is checked by the agent's validators)."""

    id = fields.Integer(dump_only=True)
    action = fields.Raw(metadata={"enum": ["accept", "drop", "reject"]})
    protocol = fields.Raw(metadata={"enum": ["tcp", "udp", "icmp", "any"]})
    ports = fields.Raw(metadata={"description": "22,80,1000-2000; empty: all ports"})
    source = fields.Raw(metadata={"description": "CIDR; empty: any source"})
    comment = fields.Raw()


resource = Resource("firewall", "Firewall rules, the same on every node (distributed requests)")

routes = ListRoutes(resource, "firewall", "firewall", FirewallRowSchema)
routes.list("firewall_list")
routes.create("firewall_create")
routes.update("firewall_update")
routes.delete("firewall_delete")
