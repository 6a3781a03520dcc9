"""API: databases (with their size and connection details), proxied to the node holding the owner's db role."""

from app.blueprints.api import schemas_userdata as s
from app.blueprints.api.blueprint import Resource
from app.blueprints.api.userdata_routes import UserDataRoutes

resource = Resource("databases", "Databases, on the owner's db node")

database_routes = UserDataRoutes(resource, "databases", s.DatabaseInSchema, s.DatabaseSchema, s.DatabaseListSchema)
database_routes.list("databases_list")
database_routes.create("databases_create")
database_routes.get("databases_get")
database_routes.delete("databases_delete")
