"""API: web domains (sites), proxied to the node holding the owner's web role."""

from app.blueprints.api import schemas_userdata as s
from app.blueprints.api.blueprint import Resource
from app.blueprints.api.userdata_routes import UserDataRoutes

resource = Resource("webdomains", "Web domains (sites) with their aliases, on the owner's web node")

routes = UserDataRoutes(resource, "webdomains", s.WebDomainInSchema, s.WebDomainSchema, s.WebDomainListSchema)
routes.list("webdomains_list")
routes.create("webdomains_create")
routes.get("webdomains_get")
routes.update("webdomains_update")
routes.delete("webdomains_delete")
