"""ISPmanager's answer document and its three shapes: XML, JSON (mechanically mapped from the XML) and text.

The JSON mapping (docs/ispmgr.md): an element's text is "$", an attribute `a` is "$a", children are keys,
repeated children are arrays, an empty element is {}; `elem` is always an array, even of one.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from xml.sax.saxutils import escape

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
        return next((c for c in self.children if isinstance(c, Element) and c.tag == tag), None)

    def add_table(self, columns: tuple[str, ...], rows: list[list[str]], tag: str = "elem") -> Table:
        """Append many `tag` children of text-only fields at once (a long list), and return them."""
        table = Table(tag, columns, rows)
        self.children.append(table)
        return table


@dataclass
class Table:
    """Many elements of one tag, each with the same text-only children: `columns` names them, each row gives
    their texts. A list of ten thousand users is one Table, rendered as text directly, not 130,000 Elements."""

    tag: str
    columns: tuple[str, ...]
    rows: list[list[str]]

    def cleaned(self) -> list[list[str]]:
        """The rows with characters XML cannot carry replaced (one scan when, as usual, there are none)."""
        if not _NOT_XML.search("".join("".join(row) for row in self.rows)):
            return self.rows
        return [[clean(value) for value in row] for row in self.rows]

    def elements(self) -> list[Element]:
        """The rows as Elements (for the text form)."""
        return [Element(self.tag, children=[Element(c, v) for c, v in zip(self.columns, row, strict=True)])
                for row in self.cleaned()]

    def json_items(self) -> list[str]:
        """Each row as JSON text: {"column": {"$": "text"}, ...}."""
        template = "{" + ",".join(f'{json.dumps(c)}:{{"$":%s}}' for c in self.columns) + "}"
        return [template % tuple(map(encode_basestring, row)) for row in self.cleaned()]

    def xml(self) -> str:
        """Each row as <tag><column>text</column>...</tag>."""
        rows = self.cleaned()
        if any(ch in "".join("".join(row) for row in rows) for ch in "&<>"):
            rows = [[escape(v) for v in row] for row in rows]
        template = f"<{self.tag}>" + "".join(f"<{c}>%s</{c}>" for c in self.columns) + f"</{self.tag}>"
        return "".join([template % tuple(row) for row in rows])


def new_doc(func: str) -> Element:
    """An empty answer for a func."""
    return Element("doc", attrs={"lang": "en", "func": clean(func)})


class _Raw(str):
    """JSON text already encoded (a Table's rows), spliced into the document as it is."""


def to_json_value(element: Element) -> dict:
    """The JSON form of one element (a Table's rows as _Raw JSON texts)."""
    value: dict = {f"${k}": v for k, v in element.attrs.items()}
    if element.text is not None:
        value["$"] = element.text
    grouped: dict[str, list] = {}
    for child in element.children:
        if isinstance(child, Table):
            if child.rows:
                grouped.setdefault(child.tag, []).extend(_Raw(item) for item in child.json_items())
        else:
            grouped.setdefault(child.tag, []).append(to_json_value(child))
    for tag, items in grouped.items():
        value[tag] = items if len(items) > 1 or tag in ALWAYS_LISTS else items[0]
    return value


def _encode(value: object) -> str:
    """JSON text of a value, with _Raw texts spliced in unchanged."""
    if isinstance(value, _Raw):
        return value
    if isinstance(value, dict):
        return "{" + ",".join(f"{encode_basestring(k)}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def to_json(doc: Element) -> str:
    """{"doc": {...}}."""
    return _encode({"doc": to_json_value(doc)})


_TABLE_MARK = "\x00table-{}\x00"  # a placeholder no cleaned text can contain


def _to_etree(element: Element, tables: list[Table]) -> ET.Element:
    node = ET.Element(element.tag, element.attrs)
    node.text = element.text
    for child in element.children:
        if isinstance(child, Table):
            node.append(ET.Comment(_TABLE_MARK.format(len(tables))))
            tables.append(child)
        else:
            node.append(_to_etree(child, tables))
    return node


def to_xml(doc: Element) -> str:
    """<?xml ...?><doc>...</doc>."""
    tables: list[Table] = []
    text = ET.tostring(_to_etree(doc, tables), encoding="unicode")
    for number, table in enumerate(tables):
        text = text.replace(f"<!--{_TABLE_MARK.format(number)}-->", table.xml(), 1)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


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
    children = [e for c in doc.children for e in (c.elements() if isinstance(c, Table) else [c])]
    for child in children:
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
