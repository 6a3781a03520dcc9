"""Forms of Cluster → Policies; the service checks the values."""

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Optional

from app.forms import WholeNumberField
from app.services.policy_rules import PLACEMENT_RESOURCES


class PolicyForm(FlaskForm):
    """The cluster's policies."""

    min_ready_percent = WholeNumberField("Minimum ready targets (%)", validators=[Optional()])
    missed_polls = WholeNumberField("Missed polls before unavailable", validators=[Optional()])
    poll_interval_s = WholeNumberField("Poll interval (s)", validators=[Optional()])
    placement_resource = SelectField("Placement resource", choices=PLACEMENT_RESOURCES, validate_choice=False)
    node_apt_source = StringField("Node APT source", description="empty, or one deb line")
