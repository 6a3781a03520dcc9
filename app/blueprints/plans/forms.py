"""Form of Accounts → Plans; the plans service checks every value."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import Optional

from app.forms import WholeNumberField
from app.models.plans import PLAN_LIMIT_KEYS
from app.models.userdata import USER_ROLES

PLAN_LIMIT_LABELS = {"webdomains": "Web domains", "domains": "Domain names", "maildomains": "Mail domains",
                     "mailboxes": "Mailboxes", "disk_mb": "Disk quota (MiB)", "databases": "Databases",
                     "dbusers": "Database users", "ftp_users": "FTP users"}


class PlanForm(FlaskForm):
    """A plan: name, allowed roles, limits."""

    name = StringField("Plan name (billing systems send it as the preset)")
    role_web = BooleanField("web", default=True)
    role_dns = BooleanField("dns", default=True)
    role_mail = BooleanField("mail", default=True)
    role_db = BooleanField("db", default=False)

    def field_for(self, name: str):
        """The form field showing the service's error for an API field (limits.webdomains → limit_webdomains)."""
        head, _, tail = name.partition(".")
        if head == "limits":
            return getattr(self, f"limit_{tail}", None) or self.limit_webdomains
        if head == "roles":
            return self.role_web
        return getattr(self, head, None)


for _key in PLAN_LIMIT_KEYS:
    setattr(PlanForm, f"limit_{_key}", WholeNumberField(PLAN_LIMIT_LABELS[_key], validators=[Optional()]))


def limit_fields(form: PlanForm) -> list:
    """The limit fields, in PLAN_LIMIT_KEYS order."""
    return [getattr(form, f"limit_{key}") for key in PLAN_LIMIT_KEYS]


def payload(form: PlanForm) -> dict:
    """The API body this form stands for."""
    return {"name": form.name.data or "",
            "roles": [r for r in USER_ROLES if getattr(form, f"role_{r}").data],
            "limits": {k: getattr(form, f"limit_{k}").data for k in PLAN_LIMIT_KEYS
                       if getattr(form, f"limit_{k}").data is not None}}

