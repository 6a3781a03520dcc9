"""Forms of Mail → Mail domains; the service checks the values with the agent's validators."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField

from app.blueprints.userdata_pages import OwnerMixin


class MailDomainForm(OwnerMixin, FlaskForm):
    """A new mail domain."""

    name = StringField("Domain name")
    dns = BooleanField("Create its MX and mail.<domain> records", default=True)

    def payload(self, admin: bool) -> dict:
        """The API body this form stands for."""
        return self.owner_fields({"name": self.name.data or "", "dns": bool(self.dns.data)}, admin)
