"""API: the mail sender whitelist and blacklist, changed on every mail node by distributed request."""

from marshmallow import Schema, fields

from app.blueprints.api.blueprint import Resource
from app.blueprints.api.list_routes import ListRoutes


class SenderRowSchema(Schema):
    """A mail sender address or domain."""

    id = fields.Integer(dump_only=True)
    sender = fields.Raw()


resource = Resource("mail", "Mail sender whitelist and blacklist, the same on every mail node")

whitelist = ListRoutes(resource, "mail_whitelist", "mail/whitelist", SenderRowSchema)
whitelist.list("mail_whitelist_list")
whitelist.create("mail_whitelist_create")
whitelist.update("mail_whitelist_update")
whitelist.delete("mail_whitelist_delete")

blacklist = ListRoutes(resource, "mail_blacklist", "mail/blacklist", SenderRowSchema)
blacklist.list("mail_blacklist_list")
blacklist.create("mail_blacklist_create")
blacklist.update("mail_blacklist_update")
blacklist.delete("mail_blacklist_delete")
