"""API: hosting plans (ISPmanager's presets): limits and roles users are created with, administrators only."""

from marshmallow import Schema, fields

from app.auth_hooks import admin_required
from app.blueprints.api.blueprint import Resource, blp, errors
from app.extensions import db
from app.models import Plan
from app.models.plans import PLAN_LIMIT_KEYS
from app.models.userdata import USER_ROLES
from app.services import plans
from app.services.errors import NotFoundError

PlanLimitsSchema = Schema.from_dict(
    {key: fields.Integer(allow_none=True) for key in PLAN_LIMIT_KEYS}, name="PlanLimitsSchema")


class PlanInSchema(Schema):
    """A plan to create or change."""

    name = fields.String()
    limits = fields.Dict(keys=fields.String(metadata={"enum": list(PLAN_LIMIT_KEYS)}),
                         values=fields.Raw(allow_none=True),
                         metadata={"description": "{kind: integer}; null or absent means no limit"})
    roles = fields.List(fields.String(metadata={"enum": list(USER_ROLES)}))


class PlanSchema(Schema):
    """A plan with the number of users on it."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    limits = fields.Nested(PlanLimitsSchema, required=True)
    roles = fields.List(fields.String(), required=True)
    users = fields.Integer(required=True)


class PlanListSchema(Schema):
    """Lists answer {"items": [...]}."""

    items = fields.List(fields.Nested(PlanSchema), required=True)


resource = Resource("plans", "Hosting plans: the limits and roles a user is created with")


def plan_or_404(plan_id: int) -> Plan:
    """The plan with this id."""
    plan = db.session.get(Plan, plan_id)
    if plan is None:
        raise NotFoundError(f"No plan with id {plan_id}.")
    return plan


@resource.route("/plans", "plans_list")
@blp.response(200, PlanListSchema)
@errors(401, 403)
@admin_required
def plans_list():
    """Every plan with its limits, roles and how many users are on it."""
    return {"items": plans.plans_to_dicts(plans.all_plans())}


@resource.route("/plans", "plans_create", methods=["POST"])
@blp.arguments(PlanInSchema())
@blp.response(201, PlanSchema)
@errors(400, 401, 403, 409)
@admin_required
def plans_create(data):
    """Create a plan."""
    return plans.plan_to_dict(plans.create_plan(data))


@resource.route("/plans/<int:plan_id>", "plans_get")
@blp.response(200, PlanSchema)
@errors(401, 403, 404)
@admin_required
def plans_get(plan_id: int):
    """One plan."""
    return plans.plan_to_dict(plan_or_404(plan_id))


@resource.route("/plans/<int:plan_id>", "plans_update", methods=["PUT"])
@blp.arguments(PlanInSchema())
@blp.response(200, PlanSchema)
@errors(400, 401, 403, 404, 409)
@admin_required
def plans_update(data, plan_id: int):
    """Change a plan; the effective limits of its users follow."""
    return plans.plan_to_dict(plans.update_plan(plan_or_404(plan_id), data))


@resource.route("/plans/<int:plan_id>", "plans_delete", methods=["DELETE"])
@blp.response(204)
@errors(401, 403, 404, 409)
@admin_required
def plans_delete(plan_id: int):
    """Delete a plan no user is on (409 naming the users otherwise)."""
    plans.delete_plan(plan_or_404(plan_id))
