"""How stored values read on pages: names in the script their owner types them in.

Names are stored and sent to nodes as A-labels (`xn--e1afmkfd.xn--p1ai`); pages show them as people
write them (`пример.рф`), with the A-label beside it in a tooltip for DNS work."""

from __future__ import annotations

import idna
from markupsafe import Markup, escape

from app.models.base import as_utc, utcnow


def unicode_name(value: object) -> str:
    """A domain name or mail address with its A-labels decoded; anything else (or a label IDNA refuses
    to decode) as it is."""
    if not isinstance(value, str) or "xn--" not in value.lower():
        return "" if value is None else str(value)
    local, at, domain = value.rpartition("@")
    labels = []
    for label in domain.split("."):
        try:
            labels.append(idna.decode(label) if label.lower().startswith("xn--") else label)
        except (idna.IDNAError, UnicodeError):
            labels.append(label)
    return f"{local}{at}{'.'.join(labels)}"


def idn(value: object) -> Markup:
    """A name for a page: Unicode, and the stored A-label form as its title when the two differ."""
    shown = unicode_name(value)
    if shown == ("" if value is None else str(value)):
        return escape(shown)
    return Markup('<span title="{}">{}</span>').format(value, shown)


def ago(moment) -> str:
    """A compact "12 s ago" for timestamps."""
    if moment is None:
        return "never"
    seconds = int((utcnow() - as_utc(moment)).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return moment.strftime("%Y-%m-%d %H:%M")


def init_app(app) -> None:
    app.add_template_filter(ago, "ago")
    app.add_template_filter(idn, "idn")
    app.add_template_filter(unicode_name, "unicode_name")
