"""Forms of Accounts → Users; the service checks every value with the shared validators."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from app.blueprints.passwords import NEW_PASSWORD
from app.forms import WholeNumberField
from app.models.userdata import LIMIT_KEYS, USER_ROLES

LIMIT_LABELS = {"webdomains": "Web domains", "domains": "Domain names", "maildomains": "Mail domains",
                "mailboxes": "Mailboxes", "databases": "Databases", "dbusers": "Database users",
                "disk_mb": "Disk quota (MB)"}


class UserForm(FlaskForm):
    """A user: name (new users only), password, level, roles, limits and the node per role."""

    name = StringField("User name (the OS account on the nodes)")
    password = PasswordField("Password", render_kw=NEW_PASSWORD)
    plan = SelectField("Plan (its limits apply where the user has none of their own)", validate_choice=False)
    level = SelectField("Level", choices=[SelectChoice("user"), SelectChoice("admin")], validate_choice=False)
    role_web = BooleanField("web", default=True)
    role_dns = BooleanField("dns", default=True)
    role_mail = BooleanField("mail", default=True)
    role_db = BooleanField("db", default=False)
    limit_webdomains = WholeNumberField(LIMIT_LABELS["webdomains"], validators=[Optional()])
    limit_domains = WholeNumberField(LIMIT_LABELS["domains"], validators=[Optional()])
    limit_maildomains = WholeNumberField(LIMIT_LABELS["maildomains"], validators=[Optional()])
    limit_mailboxes = WholeNumberField(LIMIT_LABELS["mailboxes"], validators=[Optional()])
    limit_databases = WholeNumberField(LIMIT_LABELS["databases"], validators=[Optional()])
    limit_dbusers = WholeNumberField(LIMIT_LABELS["dbusers"], validators=[Optional()])
    limit_disk_mb = WholeNumberField(LIMIT_LABELS["disk_mb"], validators=[Optional()])
    node_web = SelectField("Node for web", validate_choice=False)
    node_dns = SelectField("Node for dns", validate_choice=False)
    node_mail = SelectField("Node for mail", validate_choice=False)
    node_db = SelectField("Node for db", validate_choice=False)

    def set_plans(self, names: list[str]) -> None:
        """Offer "no plan" and every plan."""
        self.plan.choices = [SelectChoice("", "no plan"), *[SelectChoice(n) for n in names]]

    def set_nodes(self, names: list[str]) -> None:
        """Offer "by placement score" and every node for each role."""
        for role in USER_ROLES:
            getattr(self, f"node_{role}").choices = [SelectChoice("", "by placement score"),
                                                     *[SelectChoice(n) for n in names]]

    def payload(self, creating: bool) -> dict:
        """The API body this form stands for (an empty password keeps the old one when editing)."""
        data: dict = {
            "level": self.level.data or "user",
            "plan": self.plan.data or None,
            "roles": [r for r in USER_ROLES if getattr(self, f"role_{r}").data],
            "limits": {k: getattr(self, f"limit_{k}").data for k in LIMIT_KEYS
                       if getattr(self, f"limit_{k}").data is not None},
        }
        nodes = {r: getattr(self, f"node_{r}").data for r in USER_ROLES if getattr(self, f"node_{r}").data}
        if nodes:
            data["nodes"] = nodes
        if creating:
            data["name"] = self.name.data or ""
        if creating or self.password.data:
            data["password"] = self.password.data or ""
        return data

    def field_for(self, name: str):
        """The form field showing the service's error for an API field (limits.webdomains → limit_webdomains)."""
        head, _, tail = name.partition(".")
        if head == "limits":
            return getattr(self, f"limit_{tail}", None) or self.limit_webdomains
        if head == "nodes":
            return getattr(self, f"node_{tail}", None) or self.node_web
        if head == "roles":
            return self.role_web
        return getattr(self, head, None)
