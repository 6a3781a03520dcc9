"""Forms of Cluster → Nodes: add a node (where it is, then the host key and root credential), its roles."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectMultipleField, StringField, TextAreaField, widgets

from agent.stats import ROLE_PACKAGES

ROLE_CHOICES = list(ROLE_PACKAGES)


class RolesField(SelectMultipleField):
    """Roles as a row of checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()

    def pre_validate(self, form):
        """Unknown roles are reported by the service's validator, naming the field."""


class SecretTextAreaField(TextAreaField):
    """A text area that never puts its value back into the page (like PasswordField), for a private key."""

    def _value(self) -> str:
        return ""


class AddNodeForm(FlaskForm):
    """Step 1: where the node is and what it will do."""

    name = StringField("Name")
    address = StringField("Address")
    ssh_port = StringField("SSH port", default="22")
    roles = RolesField("Roles", choices=ROLE_CHOICES, default=["web", "dns", "mail"])
    weight = StringField("Weight", default="100")


class ConfirmNodeForm(AddNodeForm):
    """Step 2: the host key shown for confirmation, and the root credential, used once."""

    host_key_fingerprint = HiddenField("Host key fingerprint")
    password = PasswordField("Root password")
    private_key = SecretTextAreaField("or root's private key")


class RolesForm(FlaskForm):
    """A node's roles."""

    roles = RolesField("Roles", choices=ROLE_CHOICES)
