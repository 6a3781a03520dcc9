"""Forms of Mail → Whitelist (and Blacklist, which lists senders the same way)."""

from wtforms import StringField

from app.blueprints.system_lists import ListRowForm


class SenderForm(ListRowForm):
    """One mail sender: an address or a domain."""

    sender = StringField("Sender", description="user@example.com or example.com")
