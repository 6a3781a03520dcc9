"""API: certificates: each web domain's certificate (records on the master, the certificate and its key
on the web node), ACME requests as operations, uploads, back to self-signed, the HTTPS switches."""

from flask import request
from marshmallow import Schema, fields

from app.auth_hooks import api_user
from app.blueprints.api.blueprint import Resource, accepted, blp, errors
from app.blueprints.api.schemas_userdata import PageArgsSchema, list_of
from app.services import certificates

resource = Resource("certificates", "Web domains' TLS certificates: ACME, uploaded or self-signed")


class CertificateSchema(Schema):
    """A web domain's certificate as the master records it (never its key)."""

    id = fields.Integer(required=True, metadata={"description": "the web domain's id"})
    webdomain = fields.String(required=True)
    owner = fields.String()
    node = fields.String()
    names = fields.List(fields.String())
    kind = fields.String(metadata={"description": "self-signed, acme or uploaded"})
    state = fields.String(metadata={"description": "valid, issuing or failed"})
    issuer = fields.String()
    not_before = fields.String(allow_none=True)
    not_after = fields.String(allow_none=True)
    expires_in_days = fields.Integer(allow_none=True)
    last_error = fields.String()
    redirect = fields.Boolean()
    hsts = fields.Boolean()
    operation_id = fields.Integer(allow_none=True)


class AcmeRequestSchema(Schema):
    """Which names the certificate covers (default: the web domain and all its aliases)."""

    names = fields.List(fields.String())


class UploadSchema(Schema):
    """A certificate with its chain and private key (PEM); the key goes to the web node only."""

    certificate = fields.String(required=True)
    chain = fields.String()
    key = fields.String(required=True)


class SwitchesSchema(Schema):
    """Redirect HTTP to HTTPS, and HSTS (effective with a CA's certificate)."""

    redirect = fields.Boolean()
    hsts = fields.Boolean()


CertificateListSchema = list_of(CertificateSchema, "CertificateListSchema")


def body() -> object:
    """The request's JSON (the service names `body` when it is not an object)."""
    return request.get_json(silent=True)


@resource.route("/certificates", "certificates_list")
@blp.arguments(PageArgsSchema(), location="query")
@blp.response(200, CertificateListSchema)
@errors(401, 422)
def certificates_list(args):
    """One page of the caller's web domains with their certificates, by name, and the total."""
    items, total = certificates.list_certificates(api_user(), args["page"], args["per_page"])
    return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}


@resource.route("/certificates/<int:webdomain_id>", "certificates_get")
@blp.response(200, CertificateSchema)
@errors(401, 404, 409)
def certificates_get(webdomain_id: int):
    """One web domain's certificate record."""
    return certificates.show(api_user(), webdomain_id)


@resource.route("/certificates/<int:webdomain_id>/acme", "certificates_request", methods=["POST"])
@blp.doc(requestBody={"content": {"application/json": {"schema": AcmeRequestSchema}}})
@blp.response(202, description="The certificate is being issued: follow the operation")
@errors(400, 401, 404, 409)
def certificates_request(webdomain_id: int):
    """Request a CA's certificate through ACME (HTTP-01 on the web node) as an operation (202)."""
    data = body() if request.content_length else {}
    operation = certificates.request_acme(api_user(), webdomain_id, data)
    return accepted(operation)


@resource.route("/certificates/<int:webdomain_id>/uploaded", "certificates_upload", methods=["PUT"])
@blp.doc(requestBody={"content": {"application/json": {"schema": UploadSchema}}})
@blp.response(200, CertificateSchema)
@errors(400, 401, 404, 409, 422, 502, 503, 504)
def certificates_upload(webdomain_id: int):
    """Install your own certificate, chain and key; the web node checks the key and keeps it."""
    return certificates.upload(api_user(), webdomain_id, body())


@resource.route("/certificates/<int:webdomain_id>/switches", "certificates_switch", methods=["PUT"])
@blp.doc(requestBody={"content": {"application/json": {"schema": SwitchesSchema}}})
@blp.response(200, CertificateSchema)
@errors(400, 401, 404, 409, 422, 502, 503, 504)
def certificates_switch(webdomain_id: int):
    """Turn redirect-to-HTTPS and HSTS on or off."""
    return certificates.switch(api_user(), webdomain_id, body())


@resource.route("/certificates/<int:webdomain_id>", "certificates_delete", methods=["DELETE"])
@blp.response(204)
@errors(401, 404, 409, 502, 503, 504)
def certificates_delete(webdomain_id: int):
    """Go back to a self-signed certificate (for a new key made on the web node)."""
    certificates.revert(api_user(), webdomain_id)
    return ""
