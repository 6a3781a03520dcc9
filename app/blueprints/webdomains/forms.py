"""Forms of Domains → Web domains; the service checks the values with the agent's validators."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from app.blueprints.userdata_pages import OwnerMixin, words
from app.display import unicode_name


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


PHP_SETTING_FIELDS = ("memory_limit", "upload_max_filesize", "post_max_size", "max_execution_time",
                      "display_errors")


class WebDomainEditForm(FlaskForm):
    """Aliases, PHP, its settings and document root of a web domain."""

    aliases = StringField("Aliases (space or comma separated)")
    php = BooleanField("PHP")
    docroot = StringField("Document root")
    memory_limit = StringField("memory_limit (e.g. 256M; empty: the server's 128M)")
    upload_max_filesize = StringField("upload_max_filesize (e.g. 64M; empty: 2M)")
    post_max_size = StringField("post_max_size (at least upload_max_filesize; empty: 8M)")
    max_execution_time = StringField("max_execution_time in seconds (empty: 30)")
    display_errors = SelectField("display_errors", choices=[SelectChoice("", "server default (off)"),
                                                            SelectChoice("on"), SelectChoice("off")])

    @classmethod
    def of(cls, domain: dict) -> WebDomainEditForm:
        """The form filled with a web domain as its node holds it."""
        settings = domain.get("php_settings") or {}
        return cls(data={"aliases": " ".join(map(unicode_name, domain.get("aliases", []))), "php": domain.get("php"),
                         "docroot": domain.get("docroot"),
                         **{key: str(settings.get(key, "")) for key in PHP_SETTING_FIELDS}})

    def payload(self) -> dict:
        """The API body this form stands for."""
        data = {"aliases": words(self.aliases.data), "php": bool(self.php.data)}
        if self.docroot.data:
            data["docroot"] = self.docroot.data
        settings = {key: (getattr(self, key).data or "").strip() for key in PHP_SETTING_FIELDS}
        data["php_settings"] = {key: value for key, value in settings.items() if value}
        seconds = data["php_settings"].get("max_execution_time", "")
        if seconds.isdigit():
            data["php_settings"]["max_execution_time"] = int(seconds)
        if "display_errors" in data["php_settings"]:
            data["php_settings"]["display_errors"] = data["php_settings"]["display_errors"] == "on"
        return data
