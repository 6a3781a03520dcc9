"""API: mail domains and their mailboxes, proxied to the node holding the owner's mail role."""

from app.blueprints.api import schemas_userdata as s
from app.blueprints.api.blueprint import Resource
from app.blueprints.api.userdata_routes import UserDataRoutes

resource = Resource("maildomains", "Mail domains and their mailboxes, on the owner's mail node")

domain_routes = UserDataRoutes(resource, "maildomains", s.MailDomainInSchema, s.MailDomainSchema,
                               s.MailDomainListSchema)
domain_routes.list("maildomains_list")
domain_routes.create("maildomains_create")
domain_routes.get("maildomains_get")
domain_routes.delete("maildomains_delete")

mailbox_routes = UserDataRoutes(resource, "mailboxes", s.MailboxInSchema, s.MailboxSchema, s.MailboxListSchema)
mailbox_routes.list("maildomains_mailboxes_list")
mailbox_routes.create("maildomains_mailboxes_create")
mailbox_routes.get("maildomains_mailboxes_get")
mailbox_routes.update("maildomains_mailboxes_update")
mailbox_routes.delete("maildomains_mailboxes_delete")
