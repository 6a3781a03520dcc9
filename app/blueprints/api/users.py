"""API: panel users: accounts with roles, limits, UID and the nodes that hold their data."""

from app.auth_hooks import admin_required, api_user
from app.blueprints.api import schemas_userdata as s
from app.blueprints.api.blueprint import Resource, blp, errors
from app.extensions import db
from app.models import User
from app.services import ssh_keys, user_usage
from app.services import users as user_service
from app.services.errors import NotFoundError

resource = Resource("users", "Panel users: roles, limits, UID/GID and where each role is placed")


def user_or_404(user_id: int) -> User:
    """A user the caller may see: any for admins, only themselves for users."""
    caller = api_user()
    user = db.session.get(User, user_id)
    if user is None or (not caller.is_admin and user.id != caller.id):
        raise NotFoundError(f"No user with id {user_id}.")
    return user


@resource.route("/users", "users_list")
@blp.response(200, s.UserListSchema)
@errors(401, 403)
@admin_required
def users_list():
    """Every panel user with roles, limits, UID and location."""
    return {"items": user_usage.user_dicts()}


@resource.route("/users", "users_create", methods=["POST"])
@blp.arguments(s.UserInSchema())
@blp.response(201, s.UserSchema)
@errors(400, 401, 403, 409, 503, 504)
@admin_required
def users_create(data):
    """Create a user: UID/GID allocated, each role placed, the OS account made on those nodes."""
    return user_service.user_to_dict(user_service.create_user(data))


@resource.route("/users/<int:user_id>", "users_get")
@blp.response(200, s.UserSchema)
@errors(401, 404)
def users_get(user_id: int):
    """One user (users may read only themselves)."""
    return user_service.user_to_dict(user_or_404(user_id))


@resource.route("/users/<int:user_id>", "users_update", methods=["PUT"])
@blp.arguments(s.UserInSchema())
@blp.response(200, s.UserSchema)
@errors(400, 401, 403, 404, 409, 503, 504)
@admin_required
def users_update(data, user_id: int):
    """Change password, level, roles, limits, suspension, or move an empty role to another node."""
    return user_service.user_to_dict(user_service.update_user(user_or_404(user_id), data))


@resource.route("/users/<int:user_id>", "users_delete", methods=["DELETE"])
@blp.response(200, s.UserDeletedSchema)
@errors(401, 403, 404, 503)
@admin_required
def users_delete(user_id: int):
    """Remove the user's data on every node, then the user; the answer reports per node."""
    report = user_service.delete_user(user_or_404(user_id))
    if not report["deleted"]:
        failed = ", ".join(n["node"] for n in report["nodes"] if n["outcome"] != "applied")
        return {**report, "error": f"Not deleted: nodes {failed} did not remove the user's data."}, 503
    return report


@resource.route("/users/<int:user_id>/location", "users_location")
@blp.response(200, s.LocationSchema)
@errors(401, 404)
def users_location(user_id: int):
    """Per role, the name of the node that holds it (null when not placed)."""
    where = user_service.location(user_or_404(user_id))
    return {role: (entry["node"] if entry else None) for role, entry in where.items()}


@resource.route("/users/<int:user_id>/sshkeys", "users_sshkeys_list")
@blp.response(200, s.SshKeyListSchema)
@errors(401, 404)
def users_sshkeys_list(user_id: int):
    """The user's SSH public keys for SFTP logins (users may read only their own)."""
    return {"items": ssh_keys.list_keys(user_or_404(user_id))}


@resource.route("/users/<int:user_id>/sshkeys", "users_sshkeys_add", methods=["POST"])
@blp.arguments(s.SshKeyInSchema())
@blp.response(201, s.SshKeyAddedSchema)
@errors(400, 401, 404, 409)
def users_sshkeys_add(data, user_id: int):
    """Add an SSH public key for SFTP logins; sent to every node holding the user."""
    key, report = ssh_keys.add_key(user_or_404(user_id), data)
    return {**key, "nodes": report}


@resource.route("/users/<int:user_id>/sshkeys/<key_id>", "users_sshkeys_delete", methods=["DELETE"])
@blp.response(200, s.SshKeyDeletedSchema)
@errors(401, 404)
def users_sshkeys_delete(user_id: int, key_id: str):
    """Delete one of the user's SSH public keys; every node holding the user drops it."""
    return {"nodes": ssh_keys.delete_key(user_or_404(user_id), key_id)}
