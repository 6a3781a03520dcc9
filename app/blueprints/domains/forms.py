"""Forms of Domains → Domain names; the service checks the values with the agent's validators."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from app.blueprints.userdata_pages import OwnerMixin, words
from app.forms import WholeNumberField

RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS"]


class ZoneForm(OwnerMixin, FlaskForm):
    """A new domain name (zone)."""

    name = StringField("Domain name")
    ip = StringField("IP address for @, www and ns1")
    nameservers = StringField("Name servers (optional; default ns1.<domain>)")

    def payload(self, admin: bool) -> dict:
        """The API body this form stands for."""
        data = {"name": self.name.data or "", "nameservers": words(self.nameservers.data)}
        if self.ip.data:
            data["ip"] = self.ip.data
        return self.owner_fields(data, admin)


class RecordForm(FlaskForm):
    """A DNS record."""

    name = StringField("Name (@ for the zone itself)", default="@")
    type = SelectField("Type", choices=[SelectChoice(t) for t in RECORD_TYPES], validate_choice=False)
    value = StringField("Value")
    ttl = WholeNumberField("TTL (s)", default=3600, validators=[Optional()])
    priority = WholeNumberField("Priority (MX, SRV)", validators=[Optional()])

    def payload(self) -> dict:
        """The API body this form stands for."""
        data = {"name": self.name.data or "", "type": self.type.data or "", "value": self.value.data or ""}
        if self.ttl.data is not None:
            data["ttl"] = self.ttl.data
        if self.priority.data is not None:
            data["priority"] = self.priority.data
        return data
