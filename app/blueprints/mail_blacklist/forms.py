"""Forms of Mail → Blacklist: a sender, as on the Whitelist."""

from app.blueprints.mail_whitelist.forms import SenderForm

__all__ = ["SenderForm"]
