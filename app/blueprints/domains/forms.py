"""Forms of Domains; the values are checked by the same validators as the agent's (in the service)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from app.services.userdata import UserDataError

RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS"]


def words(text: str | None) -> list[str]:
    """A list typed as "a.com, b.com" or one per line."""
    return [w for w in (text or "").replace(",", " ").split() if w]


def show_errors(form: FlaskForm, exc: UserDataError) -> None:
    """Put a service refusal under the fields it names; anything else goes to the form's own errors."""
    placed = False
    for name, message in exc.fields.items():
        field = getattr(form, name.split(".")[0].split("[")[0], None)
        if field is not None and hasattr(field, "errors") and name != "csrf_token":
            field.errors = [*list(field.errors or []), message]
            placed = True
    if not placed:
        form.form_errors.append(exc.message)


class OwnerMixin:
    """Administrators name the owner; users always create for themselves (the field is ignored)."""

    owner = StringField("Owner (user name)")
    override = BooleanField("Override the name rules (another owner's name, a host name of the panel; recorded)")

    def owner_fields(self, data: dict, admin: bool) -> dict:
        """The owner and the override, which only administrators send."""
        if admin:
            data["owner"] = self.owner.data or ""
            if self.override.data:
                data["override"] = True
        return data


class WebDomainForm(OwnerMixin, FlaskForm):
    """A new web domain."""

    name = StringField("Domain name")
    aliases = StringField("Aliases (space or comma separated)")
    php = BooleanField("PHP")
    docroot = StringField("Document root (below the owner's home; default www/<name>)")
    dns = BooleanField("Create its DNS records", default=True)

    def payload(self, admin: bool) -> dict:
        """The API body this form stands for."""
        data = {"name": self.name.data or "", "aliases": words(self.aliases.data), "php": bool(self.php.data),
                "dns": bool(self.dns.data)}
        if self.docroot.data:
            data["docroot"] = self.docroot.data
        return self.owner_fields(data, admin)


class WebDomainEditForm(FlaskForm):
    """Aliases, PHP and document root of a web domain."""

    aliases = StringField("Aliases (space or comma separated)")
    php = BooleanField("PHP")
    docroot = StringField("Document root")

    def payload(self) -> dict:
        """The API body this form stands for."""
        data = {"aliases": words(self.aliases.data), "php": bool(self.php.data)}
        if self.docroot.data:
            data["docroot"] = self.docroot.data
        return data


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
    ttl = IntegerField("TTL (s)", default=3600, validators=[Optional()])
    priority = IntegerField("Priority (MX, SRV)", validators=[Optional()])

    def payload(self) -> dict:
        """The API body this form stands for."""
        data = {"name": self.name.data or "", "type": self.type.data or "", "value": self.value.data or ""}
        if self.ttl.data is not None:
            data["ttl"] = self.ttl.data
        if self.priority.data is not None:
            data["priority"] = self.priority.data
        return data
