"""Forms of the user's own account: profile, password, API tokens."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from app.blueprints.passwords import NEW_PASSWORD


class TokenForm(FlaskForm):
    """Name a new API token."""

    name = StringField(
        "Token name",
        validators=[
            DataRequired("Give the token a name, e.g. the script that will use it."),
            Length(max=64, message="At most 64 characters."),
            Regexp(r"^[\w .@:+-]+$", message="Letters, digits, spaces and . _ @ : + - only."),
        ],
    )


class ProfileForm(FlaskForm):
    """The name and note shown with the account (one line each; checked by the service's validators)."""

    fullname = StringField("Full name", description="How you are named to your administrator.")
    comment = StringField("Comment", description="A note about the account, e.g. a phone number to reach you.")


class PasswordForm(FlaskForm):
    """Change the password: the current one first."""

    current_password = PasswordField("Current password", validators=[DataRequired("Type your current password.")])
    new_password = PasswordField("New password", description="At least 8 characters.",
                                 render_kw={**NEW_PASSWORD, "data-generate-confirm": "confirm_password"},
                                 validators=[DataRequired("Type the new password.")])
    confirm_password = PasswordField("New password again", validators=[
        DataRequired("Type the new password once more."),
        EqualTo("new_password", message="Does not match the new password: type the same one twice.")])


class SshKeyForm(FlaskForm):
    """Add an SSH public key for SFTP logins (checked by the service: type, base64, size)."""

    key = TextAreaField("Public key", description="One line as in ~/.ssh/id_ed25519.pub: type, key data, comment.",
                        validators=[DataRequired("Paste the public key (the .pub file), not the private one.")])
