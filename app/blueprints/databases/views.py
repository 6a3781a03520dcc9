"""Databases → Databases: the list from the index, the database's details (size, connection) from the
node holding the owner's db role."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user, login_required

from app.blueprints import userdata_pages
from app.blueprints.databases.forms import DatabaseForm
from app.blueprints.userdata_pages import listing
from app.errors import show_errors
from app.htmx import render
from app.services import userdata
from app.services.errors import ServiceError

bp = Blueprint("databases", __name__, url_prefix="/databases")


def notes(created: dict) -> str:
    """What the master did to the request (a prefix added), for the flash message."""
    return "".join(f" Note: {notice}." for notice in created.get("notices") or [])


@bp.route("/", methods=["GET", "POST"])
@login_required
def index():
    """The caller's databases and the form to add one."""
    form = DatabaseForm()
    if form.validate_on_submit():
        try:
            created = userdata.create("databases", current_user, form.payload(current_user.is_admin))
            flash(f"Database {created['name']} created on {created['node']}.{notes(created)}")
            return redirect(url_for("databases.show", item_id=created["id"]))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("databases/databases.html", "databases/_databases.html", form=form,
                  **listing("databases")), status


@bp.route("/<int:item_id>")
@login_required
def show(item_id: int):
    """One database as its node holds it, with what an application needs to connect."""
    database = userdata.show("databases", current_user, item_id)
    return render("databases/database.html", "databases/_database.html", database=database)


@bp.route("/<int:item_id>/delete", methods=["POST"])
@login_required
def delete(item_id: int):
    """Drop a database and every grant on it."""
    return userdata_pages.delete("databases", item_id, "Database deleted.", url_for("databases.index"))


@bp.route("/delete-selected", methods=["POST"])
@login_required
def bulk_delete():
    """Delete the ticked databases: ask first naming them, then delete each and say what happened to each."""
    return userdata_pages.bulk_delete("databases", "database", "databases", url_for("databases.index"))
