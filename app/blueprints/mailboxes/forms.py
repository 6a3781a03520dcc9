"""Forms of Mail → Mailboxes; the service checks the values with the agent's validators, passwords are
never kept on the master."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import Optional

from app.blueprints.passwords import NEW_PASSWORD
from app.forms import WholeNumberField


class MailboxForm(FlaskForm):
    """A new mailbox in one of the caller's mail domains."""

    address = StringField("Address")
    password = PasswordField("Password (hashed on the node)", render_kw=NEW_PASSWORD)
    quota_mb = WholeNumberField("Quota (MB, 0 = none)", default=0, validators=[Optional()])

    def payload(self) -> dict:
        """The API body this form stands for."""
        return {"address": self.address.data or "", "password": self.password.data or "",
                "quota_mb": self.quota_mb.data or 0}


class MailboxEditForm(FlaskForm):
    """A new password, quota and/or forwarding."""

    password = PasswordField("New password (empty: keep)", render_kw=NEW_PASSWORD)
    quota_mb = WholeNumberField("Quota (MB, 0 = none)", validators=[Optional()])
    forward = StringField("Forward a copy to (addresses, comma separated; empty: none)")

    def payload(self) -> dict:
        """The API body this form stands for."""
        data = {"forward": self.forward.data or ""}
        if self.password.data:
            data["password"] = self.password.data
        if self.quota_mb.data is not None:
            data["quota_mb"] = self.quota_mb.data
        return data
