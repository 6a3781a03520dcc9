"""API: hosting plans (ISPmanager's presets), administrators only (SPEC §14)."""

from flask import abort
from marshmallow import Schema, fields

from app.auth_hooks import admin_required
from app.blueprints.api.views import _errors, blp
from app.extensions import db
from app.models import Plan
from app.models.plans import PLAN_LIMIT_KEYS
from app.models.userdata import USER_ROLES
from app.services import plans

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


def _plan_or_404(plan_id: int) -> Plan:
    """The plan with this id."""
    plan = db.session.get(Plan, plan_id)
    if plan is None:
        abort(404, f"No plan with id {plan_id}.")
    return plan


@blp.route("/plans")
@blp.response(200, PlanListSchema)
@_errors(401, 403)
@admin_required
def list_plans():
    """Every plan with its limits, roles and how many users are on it."""
    return {"items": plans.plans_to_dicts(plans.all_plans())}


@blp.route("/plans", methods=["POST"])
@blp.arguments(PlanInSchema())
@blp.response(201, PlanSchema)
@_errors(400, 401, 403, 409)
@admin_required
def create_plan(data):
    """Create a plan."""
    return plans.plan_to_dict(plans.create_plan(data))


@blp.route("/plans/<int:plan_id>")
@blp.response(200, PlanSchema)
@_errors(401, 403, 404)
@admin_required
def get_plan(plan_id: int):
    """One plan."""
    return plans.plan_to_dict(_plan_or_404(plan_id))


@blp.route("/plans/<int:plan_id>", methods=["PUT"])
@blp.arguments(PlanInSchema())
@blp.response(200, PlanSchema)
@_errors(400, 401, 403, 404, 409)
@admin_required
def update_plan(data, plan_id: int):
    """Change a plan; the effective limits of its users follow."""
    return plans.plan_to_dict(plans.update_plan(_plan_or_404(plan_id), data))


@blp.route("/plans/<int:plan_id>", methods=["DELETE"])
@blp.response(204)
@_errors(401, 403, 404, 409)
@admin_required
def delete_plan(plan_id: int):
    """Delete a plan no user is on (409 naming the users otherwise)."""
    plans.delete_plan(_plan_or_404(plan_id))
