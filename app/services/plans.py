"""Hosting plans: create, change, delete, and the effective limits of a user (docs/ispmgr.md, "Plans").

A user's effective limit for a kind is their own limit where they have one, else their plan's; a
missing value means no limit. Changing a plan changes the effective limits of every user on it.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from agent import validation as v
from app.extensions import db
from app.models import Plan, User, UserAccount
from app.models.base import MAX_ID
from app.models.plans import PLAN_LIMIT_KEYS
from app.models.userdata import DEFAULT_ROLES, USER_ROLES
from app.services.userdata.errors import UserDataError, invalid, object_body, validated

PLAN_FIELDS = ("name", "limits", "roles")
MAX_LIMIT = 10_000_000
# Billing systems show and send the plan's name: letters, digits, space, dot, dash, underscore.
_PLAN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")


def plan_name(value: object, field: str = "name") -> str:
    """A plan name: 1-64 of letters, digits, space . _ -, starting with a letter or digit."""
    value = validated(v.text, value, field, 64, False)
    if not _PLAN_NAME.fullmatch(value) or value != value.strip():
        raise invalid(field, "must be 1-64 of letters, digits, space . _ -, starting with a letter or digit")
    return value


def validate_limits(value: object, field: str = "limits", allowed=PLAN_LIMIT_KEYS) -> dict[str, int]:
    """{kind: integer >= 0}; a null or empty value is no limit and is left out."""
    if not isinstance(value, dict):
        raise invalid(field, "must be an object")
    clean = {}
    for key, amount in value.items():
        named = f"{field}.{key}" if isinstance(key, str) and key in allowed else field
        validated(v.choice, key, named, allowed)
        if amount is not None and amount != "":
            clean[key] = validated(v.integer, amount, named, 0, MAX_LIMIT)
    return clean


def _validate(data: object, plan: Plan | None) -> dict:
    """Every given field checked; the name must be free."""
    data = object_body(data, PLAN_FIELDS)
    clean: dict = {}
    if plan is None or "name" in data:
        name = plan_name(data.get("name"))
        other = db.session.scalar(select(Plan.id).where(Plan.name == name))
        if other is not None and (plan is None or other != plan.id):
            raise UserDataError(409, f"plan {name} exists", {"name": f"{name} exists"})
        clean["name"] = name
    if plan is None or "limits" in data:
        clean["limits"] = validate_limits(data.get("limits") or {})
    if plan is None or "roles" in data:
        roles = data.get("roles", list(DEFAULT_ROLES))
        if not isinstance(roles, list):
            raise invalid("roles", "must be a list of roles")
        clean["roles"] = sorted({validated(v.choice, r, "roles", USER_ROLES) for r in roles})
    return clean


def create_plan(data: object) -> Plan:
    """Create a plan."""
    clean = _validate(data, None)
    plan = Plan(**clean)
    db.session.add(plan)
    db.session.commit()
    return plan


def update_plan(plan: Plan, data: object) -> Plan:
    """Change a plan's name, limits or roles; its users' effective limits follow at once."""
    for key, value in _validate(data, plan).items():
        setattr(plan, key, value)
    db.session.commit()
    return plan


def users_of(plan: Plan) -> list[str]:
    """The names of the users on the plan."""
    return list(db.session.scalars(select(User.name).join(UserAccount, UserAccount.user_id == User.id)
                                   .where(UserAccount.plan_id == plan.id).order_by(User.name)))


def delete_plan(plan: Plan) -> None:
    """Delete a plan no user is on (409 naming the users otherwise)."""
    names = users_of(plan)
    if names:
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise UserDataError(409, f"plan {plan.name} is in use by {shown}; move them to another plan first.",
                            {"plan": f"in use by {shown}"})
    db.session.delete(plan)
    db.session.commit()


def find_plan(ref: object, field: str = "plan") -> Plan:
    """The plan with this id or name (400 naming the field when there is none)."""
    plan = None
    if isinstance(ref, int) and not isinstance(ref, bool):
        plan = db.session.get(Plan, ref) if 0 < ref <= MAX_ID else None
    elif isinstance(ref, str) and "\x00" not in ref:
        plan = db.session.scalar(select(Plan).where(Plan.name == ref))
    if plan is None:
        raise invalid(field, "no such plan")
    return plan


def all_plans() -> list[Plan]:
    """Every plan, by name."""
    return list(db.session.scalars(select(Plan).order_by(Plan.name)))


def plan_to_dict(plan: Plan, users: int | None = None) -> dict:
    """A plan as the API shows it, with how many users are on it."""
    if users is None:
        users = db.session.scalar(select(func.count()).select_from(UserAccount).where(UserAccount.plan_id == plan.id))
    return {"id": plan.id, "name": plan.name, "limits": dict(plan.limits or {}), "roles": list(plan.roles or []),
            "users": users}


def plans_to_dicts(rows: list[Plan]) -> list[dict]:
    """Many plans with their user counts, counted in one query."""
    counts = dict(db.session.execute(select(UserAccount.plan_id, func.count()).where(UserAccount.plan_id.is_not(None))
                                     .group_by(UserAccount.plan_id)).all())
    return [plan_to_dict(p, counts.get(p.id, 0)) for p in rows]


def plan_of(account: UserAccount | None) -> Plan | None:
    """The account's plan (a long list reads every plan at once instead: app/services/user_usage.py)."""
    if account is None or account.plan_id is None:
        return None
    return db.session.get(Plan, account.plan_id)


def effective_limits(account: UserAccount | None) -> dict[str, int]:
    """The account's own limits over its plan's (docs/ispmgr.md, "Plans"); user_usage applies the same rule
    set-based for long lists, held to this one by tests/userdata/test_users.py."""
    if account is None:
        return {}
    plan = plan_of(account)
    merged = {k: val for k, val in ((plan.limits or {}) if plan else {}).items() if isinstance(val, int)}
    merged.update({k: val for k, val in (account.limits or {}).items() if isinstance(val, int)})
    return merged
