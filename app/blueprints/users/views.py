"""Accounts → Users (administrators): create, edit, suspend, resume, delete; where each role lives."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user
from sqlalchemy import String, cast, select

from app.auth_hooks import IMPERSONATOR, admin_required
from app.blueprints.users.forms import UserForm
from app.errors import refused, show_errors
from app.extensions import db
from app.htmx import render
from app.listing import Column, ListState, page_of_select
from app.models import Node, Plan, User, UserAccount
from app.services import impersonation, users
from app.services.errors import ServiceError

bp = Blueprint("users", __name__, url_prefix="/accounts")


def user_form(**kwargs) -> UserForm:
    """The user form with the cluster's nodes to choose from."""
    form = UserForm(**kwargs)
    form.set_nodes(list(db.session.scalars(select(Node.name).order_by(Node.id))))
    form.set_plans(list(db.session.scalars(select(Plan.name).order_by(Plan.name))))
    return form


@bp.route("/users", methods=["GET", "POST"])
@login_required
@admin_required
def index():
    """Every panel user with roles, UID and location; the form to add one."""
    form = user_form()
    if form.validate_on_submit():
        try:
            user = users.create_user(form.payload(creating=True))
            flash(f"User {user.name} created.")
            return redirect(url_for("users.show", user_id=user.id))
        except ServiceError as exc:
            show_errors(form, exc)
    listing = user_listing()
    status = 400 if form.errors or form.form_errors else 200
    return render("users/users.html", "users/_users.html", form=form, listing=listing, filters=USER_FILTERS,
                  rows=users.users_to_dicts(listing.rows)), status


USER_COLUMNS = (Column("name", "Name", User.name), Column("level", "Level", User.level, natural=False),
                Column("status", "Status", User.active, natural=False),
                Column("uid", "UID", UserAccount.uid, natural=False),
                Column("created", "Created", User.created_at, natural=False))
LEVELS = (("admin", "administrators"), ("user", "customers"))
ROLES = (("web", "web"), ("dns", "dns"), ("mail", "mail"))
STATUSES = (("active", "active"), ("suspended", "suspended"))
USER_FILTERS = ({"name": "level", "label": "Level", "options": LEVELS},
                {"name": "role", "label": "Role", "options": ROLES},
                {"name": "status", "label": "Status", "options": STATUSES})


def user_listing():
    """One page of users as the query string asks: ?q= searches name, full name and comment; ?level=,
    ?role= (a role the user holds) and ?status= filter; ?sort= is one of USER_COLUMNS."""
    state = ListState.from_request(USER_COLUMNS, "name", filters=("level", "role", "status"))
    query = select(User).outerjoin(UserAccount, UserAccount.user_id == User.id)
    if (level := state.filters.get("level")) in dict(LEVELS):
        query = query.where(User.level == level)
    if (role := state.filters.get("role")) in dict(ROLES):
        # The roles are a JSON list of plain words: its text holds the word in quotes on every database.
        query = query.where(cast(UserAccount.roles, String).contains(f'"{role}"'))
    if (active := state.filters.get("status")) in dict(STATUSES):
        query = query.where(User.active.is_(active == "active"))
    return page_of_select(query, state, USER_COLUMNS, User.id, search=(User.name, User.fullname, User.comment))


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@login_required
@admin_required
def show(user_id: int):
    """One user: change level, password, roles, limits, or the node of a role that holds no data."""
    subject = db.get_or_404(User, user_id)
    shown = users.user_to_dict(subject)
    defaults = {"level": subject.level, "plan": shown["plan"] or "",
                **{f"role_{r}": r in shown["roles"] for r in ("web", "dns", "mail", "db")},
                **{f"limit_{k}": v for k, v in shown["limits"].items()}}
    form = user_form(data=defaults)
    if form.validate_on_submit():
        try:
            users.update_user(subject, form.payload(creating=False))
            flash(f"User {subject.name} saved.")
            return redirect(url_for("users.show", user_id=user_id))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("users/user.html", "users/_user.html", subject=subject, shown=shown, form=form,
                  location=users.location(subject), logins_as=impersonation.history(subject)), status


@bp.route("/users/<int:user_id>/login-as", methods=["POST"])
@login_required
@admin_required
def login_as(user_id: int):
    """Become the customer in this browser (recorded), with a banner and a way back on every page."""
    subject = db.get_or_404(User, user_id)
    admin = current_user._get_current_object()
    try:
        impersonation.check_may_log_in_as(admin, subject)
    except ServiceError as exc:
        return refused(exc, back=url_for("users.show", user_id=user_id))
    impersonation.record(impersonation.STARTED, admin, subject, request.remote_addr)
    admin_identity = admin.get_id()
    login_user(subject)
    session[IMPERSONATOR] = admin_identity
    flash(f"You are logged in as {subject.name}: you see what they see.")
    return redirect(url_for("main.index"))


@bp.route("/users/<int:user_id>/location")
@login_required
@admin_required
def location(user_id: int):
    """Per role, the node that holds it and the scores of the placement decision."""
    subject = db.get_or_404(User, user_id)
    return render("users/location.html", "users/_location.html", subject=subject,
                  location=users.location(subject))


@bp.route("/users/<int:user_id>/suspend", methods=["POST"])
@login_required
@admin_required
def suspend(user_id: int):
    """Suspend: no login, no API; their sites answer "suspended" and their mailboxes refuse logins."""
    subject = db.get_or_404(User, user_id)
    report = users.set_active(subject, False)
    flash(f"User {subject.name} suspended.{_node_report(report)}")
    return redirect(url_for("users.show", user_id=user_id))


@bp.route("/users/<int:user_id>/resume", methods=["POST"])
@login_required
@admin_required
def resume(user_id: int):
    """Resume a suspended user: logins, sites and mailboxes back."""
    subject = db.get_or_404(User, user_id)
    report = users.set_active(subject, True)
    flash(f"User {subject.name} resumed.{_node_report(report)}")
    return redirect(url_for("users.show", user_id=user_id))


def _node_report(report: list[dict]) -> str:
    """What each node did with a suspension, for the flash message (empty when every node applied it)."""
    failed = [f"{r['node']}: {r['outcome']} ({r['error']})" for r in report if r["outcome"] != "applied"]
    if not failed:
        return f" Applied on {', '.join(r['node'] for r in report)}." if report else ""
    return " Not applied on " + "; ".join(failed) + ". Repeat the action once the node is ready."


@bp.route("/users/<int:user_id>/delete", methods=["POST"])
@login_required
@admin_required
def delete(user_id: int):
    """Remove the user's data on every node, then the user; shows what each node did."""
    subject = db.get_or_404(User, user_id)
    name = subject.name
    report = users.delete_user(subject)
    status = 200 if report["deleted"] else 503
    return render_template("users/deleted.html", name=name, report=report), status
