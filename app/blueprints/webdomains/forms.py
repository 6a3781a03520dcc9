"""Forms of Domains → Web domains; the service checks the values with the agent's validators."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField

from app.blueprints.userdata_pages import OwnerMixin, words


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
