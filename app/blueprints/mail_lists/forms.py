"""The mail sender lists use the system lists' SenderForm."""

from app.blueprints.system.forms import SenderForm

__all__ = ["SenderForm"]
