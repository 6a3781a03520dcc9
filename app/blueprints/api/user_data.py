"""API: User data proxied to the node that holds it: users, web domains, domain names, mail.

Every route reads the caller from the API credentials; what they may see is decided from the
master's index (owner), never from the URL or the body. Argument schemas are given as instances:
given a class, webargs builds a new schema (copying its fields) on every request.
"""

from flask import abort, jsonify

from app.auth_hooks import admin_required, api_user
from app.blueprints.api import schemas_userdata as s
from app.blueprints.api.views import _errors, blp
from app.extensions import db
from app.models import User
from app.services import userdata, users


@blp.errorhandler(userdata.UserDataError)
def _user_data_error(exc: userdata.UserDataError):
    """A refused user-data request as {"error", "fields"} with its status."""
    return jsonify(error=exc.message, fields=exc.fields), exc.status


def _user_or_404(user_id: int) -> User:
    """A user the caller may see: any for admins, only themselves for users."""
    caller = api_user()
    user = db.session.get(User, user_id)
    if user is None or (not caller.is_admin and user.id != caller.id):
        abort(404, f"No user with id {user_id}.")
    return user


# ---------------------------------------------------------------- users


@blp.route("/users")
@blp.response(200, s.UserListSchema)
@_errors(401, 403)
@admin_required
def list_users():
    """Every panel user with roles, limits, UID and location."""
    rows = db.session.scalars(db.select(User).order_by(User.name)).all()
    return {"items": users.users_to_dicts(rows)}


@blp.route("/users", methods=["POST"])
@blp.arguments(s.UserInSchema())
@blp.response(201, s.UserSchema)
@_errors(400, 401, 403, 409, 503, 504)
@admin_required
def create_user(data):
    """Create a user: UID/GID allocated, each role placed, the OS account made on those nodes."""
    return users.user_to_dict(users.create_user(data))


@blp.route("/users/<int:user_id>")
@blp.response(200, s.UserSchema)
@_errors(401, 404)
def get_user(user_id: int):
    """One user (users may read only themselves)."""
    return users.user_to_dict(_user_or_404(user_id))


@blp.route("/users/<int:user_id>", methods=["PUT"])
@blp.arguments(s.UserInSchema())
@blp.response(200, s.UserSchema)
@_errors(400, 401, 403, 404, 409, 503, 504)
@admin_required
def update_user(data, user_id: int):
    """Change password, level, roles, limits, suspension, or move an empty role to another node."""
    return users.user_to_dict(users.update_user(_user_or_404(user_id), data))


@blp.route("/users/<int:user_id>", methods=["DELETE"])
@blp.response(200, s.UserDeletedSchema)
@_errors(401, 403, 404, 503)
@admin_required
def delete_user(user_id: int):
    """Remove the user's data on every node, then the user; the answer reports per node."""
    report = users.delete_user(_user_or_404(user_id))
    if not report["deleted"]:
        failed = ", ".join(n["node"] for n in report["nodes"] if n["outcome"] != "applied")
        return {**report, "error": f"Not deleted: nodes {failed} did not remove the user's data."}, 503
    return report


@blp.route("/users/<int:user_id>/location")
@blp.response(200, s.LocationSchema)
@_errors(401, 404)
def user_location(user_id: int):
    """Per role, the name of the node that holds it (null when not placed)."""
    where = users.location(_user_or_404(user_id))
    return {role: (entry["node"] if entry else None) for role, entry in where.items()}


# ---------------------------------------------------------------- proxied records


def _register(kind: str, in_schema, out_schema, list_schema, can_update: bool) -> None:
    """List, create, show, (update) and delete routes for one kind of user data."""

    def list_items(args):
        items, total = userdata.list_full(kind, api_user(), args["page"], args["per_page"])
        return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}

    def create_item(data):
        return userdata.create(kind, api_user(), data)

    def show_item(item_id: int):
        return userdata.show(kind, api_user(), item_id)

    def update_item(data, item_id: int):
        return userdata.update(kind, api_user(), item_id, data)

    def delete_item(item_id: int):
        userdata.delete(kind, api_user(), item_id)
        return "", 204

    label = userdata.KINDS[kind].label
    for func, doc in ((list_items, f"One page of the {label}s the caller may see, by name, with details from "
                                   "their nodes, and the total."),
                      (create_item, f"Create a {label} on the node holding the owner's role."),
                      (show_item, f"One {label}, read from its node."),
                      (update_item, f"Change a {label} on its node."),
                      (delete_item, f"Delete a {label} on its node, then from the index.")):
        func.__name__ = f"{func.__name__.split('_')[0]}_{kind}"
        func.__doc__ = doc
    blp.route(f"/{kind}")(blp.arguments(s.PageArgsSchema(), location="query")(
        blp.response(200, list_schema)(_errors(401, 422)(list_items))))
    refusals = _errors(400, 401, 403, 404, 409, 422, 502, 503, 504)
    body = blp.arguments(in_schema())
    blp.route(f"/{kind}", methods=["POST"])(
        body(blp.response(201, out_schema)(refusals(create_item))))
    blp.route(f"/{kind}/<int:item_id>")(blp.response(200, out_schema)(_errors(401, 404, 409, 503)(show_item)))
    if can_update:
        blp.route(f"/{kind}/<int:item_id>", methods=["PUT"])(
            body(blp.response(200, out_schema)(_errors(400, 401, 403, 404, 409, 502, 503, 504)(update_item))))
    blp.route(f"/{kind}/<int:item_id>", methods=["DELETE"])(
        blp.response(204)(_errors(401, 404, 409, 502, 503, 504)(delete_item)))


_register("webdomains", s.WebDomainInSchema, s.WebDomainSchema, s.WebDomainListSchema, can_update=True)
_register("domains", s.DomainInSchema, s.DomainSchema, s.DomainListSchema, can_update=False)
_register("maildomains", s.MailDomainInSchema, s.MailDomainSchema, s.MailDomainListSchema, can_update=False)
_register("mailboxes", s.MailboxInSchema, s.MailboxSchema, s.MailboxListSchema, can_update=True)


@blp.route("/domains/<int:domain_id>/records")
@blp.response(200, s.RecordListSchema)
@_errors(401, 404, 409, 503)
def list_records(domain_id: int):
    """The records of a zone, read from its node."""
    return {"items": userdata.list_records(api_user(), domain_id)}


@blp.route("/domains/<int:domain_id>/records", methods=["POST"])
@blp.arguments(s.RecordInSchema())
@blp.response(201, s.RecordSchema)
@_errors(400, 401, 404, 409, 422, 502, 503, 504)
def add_record(data, domain_id: int):
    """Add a record; the node checks the whole zone and raises its serial."""
    return userdata.add_record(api_user(), domain_id, data)


@blp.route("/domains/<int:domain_id>/records/<int:record_id>", methods=["PUT"])
@blp.arguments(s.RecordInSchema())
@blp.response(200, s.RecordSchema)
@_errors(400, 401, 404, 409, 502, 503, 504)
def update_record(data, domain_id: int, record_id: int):
    """Change a record; the zone's serial goes up."""
    return userdata.update_record(api_user(), domain_id, record_id, data)


@blp.route("/domains/<int:domain_id>/records/<int:record_id>", methods=["DELETE"])
@blp.response(204)
@_errors(401, 404, 409, 502, 503, 504)
def delete_record(domain_id: int, record_id: int):
    """Remove a record."""
    userdata.delete_record(api_user(), domain_id, record_id)
    return "", 204
