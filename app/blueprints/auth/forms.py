"""Login form and the account-name rule shared with the CLI."""

import re

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

USER_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def validate_user_name(name: str) -> str | None:
    """Why a user name is not acceptable (it becomes an OS account name), or None."""
    if not USER_NAME_RE.fullmatch(name):
        return "1–32 characters: a lowercase letter, then lowercase letters, digits, _ or -"
    return None


class LoginForm(FlaskForm):
    """User name and password."""

    username = StringField("User name", validators=[DataRequired("Enter your user name."), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=1024)])
