"""API: database users (passwords, grants on the owner's databases), proxied to the owner's db node."""

from app.auth_hooks import api_user
from app.blueprints.api import schemas_userdata as s
from app.blueprints.api.blueprint import Resource, blp, errors
from app.blueprints.api.userdata_routes import UserDataRoutes
from app.services.userdata import databases

user_resource = Resource("dbusers", "Database users: passwords, grants on the owner's databases")
user_routes = UserDataRoutes(user_resource, "dbusers", s.DbUserInSchema, s.DbUserSchema, s.DbUserListSchema)
user_routes.list("dbusers_list")
user_routes.create("dbusers_create")
user_routes.get("dbusers_get")
user_routes.update("dbusers_update")
user_routes.delete("dbusers_delete")


@user_resource.route("/dbusers/<int:item_id>/grants", "dbusers_grant", methods=["POST"])
@blp.arguments(s.GrantInSchema())
@blp.response(200, s.DbUserSchema)
@errors(400, 401, 403, 404, 409, 502, 503, 504)
def grant(data, item_id: int):
    """Grant the user all privileges on one more of its owner's databases."""
    return databases.grant(api_user(), item_id, data)


@user_resource.route("/dbusers/<int:item_id>/grants/<database>", "dbusers_revoke", methods=["DELETE"])
@blp.response(200, s.DbUserSchema)
@errors(400, 401, 404, 409, 502, 503, 504)
def revoke(item_id: int, database: str):
    """Take back the user's grant on one database."""
    return databases.revoke(api_user(), item_id, database)
