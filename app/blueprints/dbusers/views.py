"""Databases → Database users: the list from the index, changes on the node holding the owner's db role."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user, login_required

from app.blueprints import userdata_pages
from app.blueprints.databases.views import notes
from app.blueprints.dbusers.forms import DbUserEditForm, DbUserForm
from app.blueprints.userdata_pages import listing
from app.errors import show_errors
from app.htmx import render
from app.services import userdata
from app.services.errors import ServiceError

bp = Blueprint("dbusers", __name__, url_prefix="/databases/users")


@bp.route("/", methods=["GET", "POST"])
@login_required
def index():
    """The caller's database users and the form to add one."""
    form = DbUserForm()
    if form.validate_on_submit():
        try:
            created = userdata.create("dbusers", current_user, form.payload(current_user.is_admin))
            flash(f"Database user {created['name']} created on {created['node']}.{notes(created)}")
            return redirect(url_for("dbusers.index"))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("dbusers/dbusers.html", "dbusers/_dbusers.html", form=form, **listing("dbusers")), status


@bp.route("/<int:item_id>", methods=["GET", "POST"])
@login_required
def show(item_id: int):
    """One database user as its node holds it; the form changes its password or its databases."""
    user = userdata.show("dbusers", current_user, item_id)
    form = DbUserEditForm(data={"databases": ", ".join(user.get("databases") or [])})
    if form.validate_on_submit():
        try:
            changed = userdata.update("dbusers", current_user, item_id, form.payload())
            flash(f"Database user {user['name']} saved.{notes(changed)}")
            return redirect(url_for("dbusers.show", item_id=item_id))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("dbusers/dbuser.html", "dbusers/_dbuser.html", user=user, form=form), status


@bp.route("/<int:item_id>/delete", methods=["POST"])
@login_required
def delete(item_id: int):
    """Drop a database user on the node."""
    return userdata_pages.delete("dbusers", item_id, "Database user deleted.", url_for("dbusers.index"))


@bp.route("/delete-selected", methods=["POST"])
@login_required
def bulk_delete():
    """Delete the ticked database users: ask first naming them, then delete each and say what happened to each."""
    return userdata_pages.bulk_delete("dbusers", "database user", "database users", url_for("dbusers.index"))
