"""Forms of System → Firewall; the agent's validators check the values."""

from wtforms import SelectField, StringField

from agent.ops.firewall import ACTIONS, PROTOCOLS
from app.blueprints.system_lists import ListRowForm


class FirewallRuleForm(ListRowForm):
    """One firewall rule."""

    action = SelectField("Action", choices=ACTIONS, validate_choice=False)
    protocol = SelectField("Protocol", choices=PROTOCOLS, default="tcp", validate_choice=False)
    ports = StringField("Ports", description="22,80,1000-2000; empty: all ports")
    source = StringField("Source", description="CIDR; empty: any source")
    comment = StringField("Comment")
