"""Forms of System → Firewall, Scheduler, Cluster → Policies; the agent's validators check the values."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import Optional

from agent.ops.firewall import ACTIONS, PROTOCOLS
from app.services.policy_rules import PLACEMENT_RESOURCES


class FirewallRuleForm(FlaskForm):
    """One firewall rule."""

    action = SelectField("Action", choices=ACTIONS, validate_choice=False)
    protocol = SelectField("Protocol", choices=PROTOCOLS, default="tcp", validate_choice=False)
    ports = StringField("Ports", description="22,80,1000-2000; empty: all ports")
    source = StringField("Source", description="CIDR; empty: any source")
    comment = StringField("Comment")


class SchedulerEntryForm(FlaskForm):
    """One cron entry."""

    schedule = StringField("Schedule", description="*/5 * * * * or @daily")
    user = StringField("User", default="root")
    command = StringField("Command")
    comment = StringField("Comment")
    enabled = BooleanField("Enabled", default=True)


class SenderForm(FlaskForm):
    """One mail sender: an address or a domain."""

    sender = StringField("Sender", description="user@example.com or example.com")


class PolicyForm(FlaskForm):
    """The cluster's policies."""

    min_ready_percent = IntegerField("Minimum ready targets (%)", validators=[Optional()])
    missed_polls = IntegerField("Missed polls before unavailable", validators=[Optional()])
    poll_interval_s = IntegerField("Poll interval (s)", validators=[Optional()])
    placement_resource = SelectField("Placement resource", choices=PLACEMENT_RESOURCES, validate_choice=False)
    node_apt_source = StringField("Node APT source", description="empty, or one deb line")


def row_data(form: FlaskForm, fields: tuple[str, ...]) -> dict:
    """The submitted values of a list row, as the validators take them."""
    data = {}
    for name in fields:
        value = form[name].data
        data[name] = "" if value is None and not isinstance(form[name], BooleanField) else value
    return data
