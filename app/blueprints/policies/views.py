"""Cluster → Policies: the rules distributed requests, polling, placement and node setup follow."""

from flask import Blueprint, flash, redirect, url_for
from flask_login import login_required

from agent.validation import ValidationError
from app.auth_hooks import admin_required
from app.blueprints.policies.forms import PolicyForm
from app.errors import show_errors
from app.extensions import db
from app.htmx import render
from app.services.policies import get_policy
from app.services.policy_rules import FIELDS, policy_to_dict, update_policy

bp = Blueprint("policies", __name__, url_prefix="/cluster/policies")


@bp.route("", methods=["GET", "POST"])
@login_required
@admin_required
def index():
    """The cluster's policies; nothing is stored unless every value is valid."""
    policy = get_policy()
    form = PolicyForm(data=policy_to_dict(policy))
    if form.validate_on_submit():
        try:
            update_policy({key: form[key].data for key in FIELDS if form[key].data is not None})
        except ValidationError as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            flash("Policies saved.")
            return redirect(url_for("policies.index"))
    status = 400 if form.errors else 200
    return render("policies/policies.html", "policies/policies.html", form=form), status
