"""Forms of Mail; values are checked by the agent's validators in the service, passwords never kept."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, StringField
from wtforms.validators import Optional

from app.blueprints.domains.forms import OwnerMixin


class MailDomainForm(OwnerMixin, FlaskForm):
    """A new mail domain."""

    name = StringField("Domain name")
    dns = BooleanField("Create its MX and mail.<domain> records", default=True)

    def payload(self, admin: bool) -> dict:
        """The API body this form stands for."""
        return self.owner_fields({"name": self.name.data or "", "dns": bool(self.dns.data)}, admin)


class MailboxForm(FlaskForm):
    """A new mailbox in one of the caller's mail domains."""

    address = StringField("Address")
    password = PasswordField("Password (hashed on the node)")
    quota_mb = IntegerField("Quota (MB, 0 = none)", default=0, validators=[Optional()])

    def payload(self) -> dict:
        """The API body this form stands for."""
        return {"address": self.address.data or "", "password": self.password.data or "",
                "quota_mb": self.quota_mb.data or 0}


class MailboxEditForm(FlaskForm):
    """A new password, quota and/or forwarding."""

    password = PasswordField("New password (empty: keep)")
    quota_mb = IntegerField("Quota (MB, 0 = none)", validators=[Optional()])
    forward = StringField("Forward a copy to (addresses, comma separated; empty: none)")

    def payload(self) -> dict:
        """The API body this form stands for."""
        data = {"forward": self.forward.data or ""}
        if self.password.data:
            data["password"] = self.password.data
        if self.quota_mb.data is not None:
            data["quota_mb"] = self.quota_mb.data
        return data
