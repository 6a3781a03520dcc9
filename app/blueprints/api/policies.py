"""API: the cluster-wide policies (readiness threshold, polling, placement resource, node apt source)."""

from marshmallow import Schema, fields

from app.auth_hooks import admin_required
from app.blueprints.api.blueprint import Resource, blp, errors, json_object
from app.services import policy_rules
from app.services.policies import get_policy


class PolicySchema(Schema):
    """Cluster-wide policies."""

    min_ready_percent = fields.Integer(metadata={"minimum": 0, "maximum": 100})
    missed_polls = fields.Integer(metadata={"minimum": 1, "maximum": 100})
    poll_interval_s = fields.Integer(metadata={"minimum": 1, "maximum": 3600})
    placement_resource = fields.String(metadata={"enum": ["disk", "memory", "none"]})
    node_apt_source = fields.String()


resource = Resource("policies", "Cluster-wide policies")


@resource.route("/policies", "policies_get", methods=["GET"])
@blp.response(200, PolicySchema)
@errors(401, 403)
@admin_required
def policies_get():
    """The cluster's policies."""
    return policy_rules.policy_to_dict(get_policy())


@resource.route("/policies", "policies_update", methods=["PUT"])
@blp.doc(requestBody={"content": {"application/json": {"schema": PolicySchema}}})
@blp.response(200, PolicySchema)
@errors(400, 401, 403)
@admin_required
def policies_update():
    """Change some or all policies; every value is checked, nothing is stored if one is wrong."""
    return policy_rules.policy_to_dict(policy_rules.update_policy(json_object()))
