"""ISPmanager's answer document and its three shapes: XML, JSON (mechanically mapped from the XML) and text.

The JSON mapping (docs/ispmgr.md): an element's text is "$", an attribute `a` is "$a", children are keys,
repeated children are arrays, an empty element is {}; `elem` is always an array, even of one.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

# Characters XML 1.0 cannot carry, even escaped: a value echoed back must not break a strict parser.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
ALWAYS_LISTS = ("elem",)


def clean(value: object) -> str:
    """A value as text an XML document can hold."""
    return _NOT_XML.sub("\ufffd", str(value))


@dataclass
class Element:
    """One element: tag, attributes, text, children."""

    tag: str
    text: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Element] = field(default_factory=list)

    def add(self, tag: str, text: object = None, **attrs: object) -> Element:
        """Append a child and return it."""
        child = Element(tag, None if text is None else clean(text), {k: clean(v) for k, v in attrs.items()})
        self.children.append(child)
        return child

    def find(self, tag: str) -> Element | None:
        """The first child with this tag."""
        return next((c for c in self.children if c.tag == tag), None)


def new_doc(func: str) -> Element:
    """An empty answer for a func."""
    return Element("doc", attrs={"lang": "en", "func": clean(func)})


def to_json_value(element: Element) -> dict:
    """The JSON form of one element."""
    value: dict = {f"${k}": v for k, v in element.attrs.items()}
    if element.text is not None:
        value["$"] = element.text
    grouped: dict[str, list] = {}
    for child in element.children:
        grouped.setdefault(child.tag, []).append(to_json_value(child))
    for tag, items in grouped.items():
        value[tag] = items if len(items) > 1 or tag in ALWAYS_LISTS else items[0]
    return value


def to_json(doc: Element) -> str:
    """{"doc": {...}}."""
    return json.dumps({"doc": to_json_value(doc)}, ensure_ascii=False)


def _to_etree(element: Element) -> ET.Element:
    node = ET.Element(element.tag, element.attrs)
    node.text = element.text
    for child in element.children:
        node.append(_to_etree(child))
    return node


def to_xml(doc: Element) -> str:
    """<?xml ...?><doc>...</doc>."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(_to_etree(doc), encoding="unicode") + "\n"


def _line(element: Element) -> str:
    """An element's children as `key=value` pairs on one line."""
    return " ".join(f"{c.tag}={c.text or ''}" for c in element.children)


def to_text(doc: Element) -> str:
    """ISPmanager's text form: `OK`, `ERROR type(object): message`, or a line per element."""
    error = doc.find("error")
    if error is not None:
        msg = error.find("msg")
        return f"ERROR {error.attrs.get('type', '')}({error.attrs.get('object', '')}): {msg.text if msg else ''}\n"
    lines = []
    for child in doc.children:
        if child.tag == "ok":
            lines.insert(0, "OK")
        elif child.tag == "elem":
            lines.append(_line(child))
        elif child.children:
            lines.append(_line(child))
        else:
            lines.append(f"{child.tag}={child.text or ''}")
    return "\n".join(lines) + "\n"


FORMATS = {"json": ("application/json", to_json), "sjson": ("application/json", to_json),
           "xml": ("text/xml; charset=utf-8", to_xml), "text": ("text/plain; charset=utf-8", to_text)}


def render(doc: Element, out: str) -> tuple[str, str]:
    """(body, content type) in the asked format; XML, ISPmanager's own default, for anything else."""
    content_type, renderer = FORMATS.get(out, FORMATS["xml"])
    return renderer(doc), content_type


class IspError(Exception):
    """A refusal in ISPmanager's shape: a type (auth, access, value, exists, missed, limit, sys), the
    object (the parameter or kind at fault) and a message."""

    def __init__(self, type_: str, object_: str, message: str, value: str | None = None):
        super().__init__(message)
        self.type = type_
        self.object = object_
        self.message = message
        self.value = value

    def to_doc(self, func: str) -> Element:
        """<doc><error type object><param .../><detail/><msg/></error></doc>."""
        doc = new_doc(func)
        error = doc.add("error", type=self.type, object=self.object, lang="en")
        error.add("param", self.object, name="object", type="msg")
        if self.value is not None:
            error.add("param", self.value, name="value")
        error.add("detail", self.message)
        error.add("msg", self.message)
        return doc
