"""/ispmgr presets: ISPmanager's name for Hostfleet's plans (docs/ispmgr.md, "Plans")."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.ispmgr.doc import Element, IspError, new_doc
from app.ispmgr.funcs import LIMIT_PARAMS, Call, elids, limits_from
from app.models import Plan
from app.services import plans


def _plan_limits(elem: Element, plan: Plan | None) -> None:
    """Every limit_* of a plan (empty: no limit)."""
    limits = (plan.limits or {}) if plan else {}
    for key, param in LIMIT_PARAMS.items():
        elem.add(param, limits.get(key, ""))


def preset_list(call: Call) -> Element:
    """Every plan with its limits."""
    doc = new_doc(call.func)
    for plan in plans.all_plans():
        elem = doc.add("elem")
        elem.add("name", plan.name)
        _plan_limits(elem, plan)
    return doc


def _plan(name: str) -> Plan:
    """A plan by name; an unknown one is value(elid)."""
    plan = None if "\x00" in name else db.session.scalar(select(Plan).where(Plan.name == name))
    if plan is None:
        raise IspError("value", "elid", f"No preset {name}", name[:64])
    return plan


def preset_edit(call: Call) -> Element:
    """View a plan's limits (elid), create one (sok) or change one (sok and elid)."""
    plan = _plan(call.get("elid")) if call.get("elid") else None
    doc = new_doc(call.func)
    if not call.saving:
        doc.add("name", plan.name if plan else "")
        _plan_limits(doc, plan)
        return doc
    limits = limits_from(call)
    if plan is None:
        plan = plans.create_plan({"name": call.get("name") or "", "limits": limits})
    else:
        data: dict = {"limits": {**(plan.limits or {}), **limits}}
        if call.get("name") not in (None, "", plan.name):
            data["name"] = call.get("name")
        plans.update_plan(plan, data)
    doc.add("ok")
    doc.add("id", plan.name)
    return doc


def preset_delete(call: Call) -> Element:
    """Delete plans no user is on."""
    targets = [_plan(name) for name in elids(call)]
    for plan in targets:
        plans.delete_plan(plan)
    doc = new_doc(call.func)
    doc.add("ok")
    return doc


def handlers() -> dict:
    """func → (handler, administrators only) for the presets."""
    return {"preset": (preset_list, True), "preset.edit": (preset_edit, True), "preset.delete": (preset_delete, True)}
