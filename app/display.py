"""How stored values read on pages: names in the script their owner types them in.

Names are stored and sent to nodes as A-labels (`xn--e1afmkfd.xn--p1ai`); pages show them as people
write them (`пример.рф`), with the A-label beside it in a tooltip for DNS work."""

from __future__ import annotations

import re

import idna
from markupsafe import Markup, escape

from app.models.base import as_utc, utcnow

# A name (or mail address) with at least one A-label in it, inside any text: a message, an operation's title.
_A_LABEL_NAME = re.compile(r"(?<![\w.-])(?:[\w-]+\.)*xn--[\w-]+(?:\.[\w-]+)*\.?(?![\w-])", re.ASCII | re.IGNORECASE)


def _decoded(name: str) -> str:
    """One name with its A-labels decoded; a label IDNA refuses to decode stays as it is."""
    labels = []
    for label in name.split("."):
        try:
            labels.append(idna.decode(label) if label.lower().startswith("xn--") else label)
        except (idna.IDNAError, UnicodeError):
            labels.append(label)
    return ".".join(labels)


def unicode_name(value: object) -> str:
    """A domain name, a mail address, or any text naming them, with every A-label decoded
    (`Mailbox info@xn--e1afmkfd.xn--p1ai created.` → `Mailbox info@пример.рф created.`); anything else as
    it is."""
    if value is None:
        return ""
    text = str(value)
    if "xn--" not in text.lower():
        return text
    return _A_LABEL_NAME.sub(lambda m: _decoded(m[0]), text)


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """A number with its noun in the right number: "1 node", "2 nodes", "0 entries" (plural given)."""
    return f"{number} {noun if number in (1, -1) else plural or noun + 's'}"


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
    app.add_template_filter(counted, "counted")
    app.add_template_filter(idn, "idn")
    app.add_template_filter(unicode_name, "unicode_name")
