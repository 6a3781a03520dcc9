"""Form of Databases → Databases; the service checks the values with the agent's validators."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField

from agent.ops.db import CHARSETS, DEFAULT_CHARSET
from app.blueprints.userdata_pages import OwnerMixin


class DatabaseForm(OwnerMixin, FlaskForm):
    """A new database (`<owner>_` is put in front of a name given without it)."""

    name = StringField("Name (the owner's prefix is added when missing)")
    charset = SelectField("Character set", choices=list(CHARSETS), default=DEFAULT_CHARSET, validate_choice=False)

    def payload(self, admin: bool) -> dict:
        """The API body this form stands for."""
        data = {"name": self.name.data or "", "charset": self.charset.data or DEFAULT_CHARSET}
        if admin:
            data["owner"] = self.owner.data or ""
        return data
