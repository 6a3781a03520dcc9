"""Forms of Databases → Database users; passwords go to the db node only, never kept on the master."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField

from app.blueprints.passwords import NEW_PASSWORD
from app.blueprints.userdata_pages import OwnerMixin, words


class DbUserForm(OwnerMixin, FlaskForm):
    """A new database user, granted on some of the owner's databases."""

    name = StringField("Name (the owner's prefix is added when missing)")
    password = PasswordField("Password (kept only as MariaDB's hash on the db node)",
                             render_kw=NEW_PASSWORD)
    databases = StringField("Databases it may use (names, comma separated)")

    def payload(self, admin: bool) -> dict:
        """The API body this form stands for."""
        data = {"name": self.name.data or "", "password": self.password.data or "",
                "databases": words(self.databases.data)}
        if admin:
            data["owner"] = self.owner.data or ""
        return data


class DbUserEditForm(FlaskForm):
    """A new password and/or the databases the user is granted."""

    password = PasswordField("New password (empty: keep)", render_kw=NEW_PASSWORD)
    databases = StringField("Databases it may use (names, comma separated; empty: none)")

    def payload(self) -> dict:
        """The API body this form stands for."""
        data: dict = {"databases": words(self.databases.data)}
        if self.password.data:
            data["password"] = self.password.data
        return data
