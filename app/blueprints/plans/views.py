"""Accounts → Plans (administrators): the named sets of limits users are given."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import login_required

from app.auth_hooks import admin_required
from app.blueprints.plans.forms import PlanForm, limit_fields, payload
from app.errors import show_errors
from app.extensions import db
from app.htmx import render
from app.models import Plan
from app.models.userdata import USER_ROLES
from app.services import plans
from app.services.errors import ServiceError

bp = Blueprint("plans", __name__, url_prefix="/accounts/plans")


@bp.route("/", methods=["GET", "POST"])
@login_required
@admin_required
def index():
    """Every plan with its limits and users; the form to add one."""
    form = PlanForm()
    if form.validate_on_submit():
        try:
            plan = plans.create_plan(payload(form))
            flash(f"Plan {plan.name} created.")
            return redirect(url_for("plans.index"))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    rows = plans.plans_to_dicts(plans.all_plans())
    return render("plans/plans.html", "plans/_plans.html", form=form, rows=rows,
                  limit_fields=limit_fields(form)), status


@bp.route("/<int:plan_id>", methods=["GET", "POST"])
@login_required
@admin_required
def plan(plan_id: int):
    """One plan: change its name, roles or limits; its users' effective limits follow."""
    subject = db.get_or_404(Plan, plan_id)
    defaults = {"name": subject.name, **{f"role_{r}": r in (subject.roles or []) for r in USER_ROLES},
                **{f"limit_{k}": val for k, val in (subject.limits or {}).items()}}
    form = PlanForm(data=defaults)
    if form.validate_on_submit():
        try:
            plans.update_plan(subject, payload(form))
            flash(f"Plan {subject.name} saved.")
            return redirect(url_for("plans.plan", plan_id=plan_id))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render_template("plans/plan.html", subject=subject, form=form, limit_fields=limit_fields(form),
                           users=plans.users_of(subject)), status


@bp.route("/<int:plan_id>/delete", methods=["POST"])
@login_required
@admin_required
def delete(plan_id: int):
    """Delete a plan no user is on; one in use is refused with its users named."""
    subject = db.get_or_404(Plan, plan_id)
    name = subject.name
    plans.delete_plan(subject)
    flash(f"Plan {name} deleted.")
    return redirect(url_for("plans.index"))
