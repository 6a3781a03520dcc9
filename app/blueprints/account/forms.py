"""Forms of the user's own account."""

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Regexp


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
