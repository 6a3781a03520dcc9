"""API: domain names (DNS zones) and their records, proxied to the node holding the owner's dns role."""

from app.auth_hooks import api_user
from app.blueprints.api import schemas_userdata as s
from app.blueprints.api.blueprint import Resource, blp, errors
from app.blueprints.api.userdata_routes import UserDataRoutes
from app.services import userdata

resource = Resource("domains", "Domain names (DNS zones) and their records, on the owner's dns node")

routes = UserDataRoutes(resource, "domains", s.DomainInSchema, s.DomainSchema, s.DomainListSchema)
routes.list("domains_list")
routes.create("domains_create")
routes.get("domains_get")
routes.delete("domains_delete")


@resource.route("/domains/<int:domain_id>/records", "domains_records_list")
@blp.response(200, s.RecordListSchema)
@errors(401, 404, 409, 503)
def domains_records_list(domain_id: int):
    """The records of a zone, read from its node."""
    return {"items": userdata.list_records(api_user(), domain_id)}


@resource.route("/domains/<int:domain_id>/records", "domains_records_create", methods=["POST"])
@blp.arguments(s.RecordInSchema())
@blp.response(201, s.RecordSchema)
@errors(400, 401, 404, 409, 422, 502, 503, 504)
def domains_records_create(data, domain_id: int):
    """Add a record; the node checks the whole zone and raises its serial."""
    return userdata.add_record(api_user(), domain_id, data)


@resource.route("/domains/<int:domain_id>/records/<int:record_id>", "domains_records_update", methods=["PUT"])
@blp.arguments(s.RecordInSchema())
@blp.response(200, s.RecordSchema)
@errors(400, 401, 404, 409, 502, 503, 504)
def domains_records_update(data, domain_id: int, record_id: int):
    """Change a record; the zone's serial goes up."""
    return userdata.update_record(api_user(), domain_id, record_id, data)


@resource.route("/domains/<int:domain_id>/records/<int:record_id>", "domains_records_delete", methods=["DELETE"])
@blp.response(204)
@errors(401, 404, 409, 502, 503, 504)
def domains_records_delete(domain_id: int, record_id: int):
    """Remove a record."""
    userdata.delete_record(api_user(), domain_id, record_id)
    return "", 204
