"""Lists that scale: one page of rows chosen by the query string (search, filters, sort, page, page size),
the same for every list page, with the page's state kept in its URL (docs/design.md, "Lists").

A list page builds a `ListState` from the request, asks `page_of_select` (rows in the database) or
`page_of_rows` (rows already in memory) for a `Page`, and hands it to the `macros/listing.html` macros:
the search form, the sortable headers, the pager and the count.

Sorting is natural ("site2" before "site10"). For a column sorted naturally the database filters and
returns only (id, value) pairs, Python orders them, and only the page's rows are loaded whole; other
columns (and a natural one when more than NATURAL_LIMIT rows match) are ordered, limited and offset
by the database itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from flask import request, url_for
from sqlalchemy import Select, func, or_, select

from app.extensions import db

PER_PAGE = 50
PER_PAGE_CHOICES = (20, 50, 100, 200)
MAX_PER_PAGE = 500
# Beyond it the offset would overflow the database's integers.
MAX_PAGE = 1_000_000
MAX_QUERY = 200
# Above this many matching rows a column is ordered by the database as text (client10 before client8):
# natural order costs a pass over every matching row per request, bounded here to well under a second.
NATURAL_LIMIT = 50_000

_DIGITS = re.compile(r"\d+")


def _padded(match: re.Match) -> str:
    digits = match[0].lstrip("0") or "0"
    return f"{len(digits):03d}{digits}"


def natural_key(value: Any) -> tuple:
    """A sort key that orders the numbers inside text by value, case-insensitively: site2 < site10 <
    Site11; None sorts first, and equal keys fall back to the text itself so the order is total.

    Each run of digits becomes its length and itself (2 → "0012", 10 → "00210"), so one string
    comparison orders the numbers by value: cheap enough to sort ten thousand names per request."""
    if value is None:
        return (0, "", "")
    if isinstance(value, bool | int | float):
        return (1, float(value), "")
    return _text_key(str(value))


@lru_cache(maxsize=50_000)
def _text_key(text: str) -> tuple:
    # Cached: a list asked for again (its next page, a poll) sorts the same names again.
    return (2, _DIGITS.sub(_padded, text.casefold()), text)


@dataclass(frozen=True)
class Column:
    """A sortable column: `key` is its ?sort= value; `expr` the SQL expression a select sorts by, or
    `get` how a row in memory gives its value; natural sorts by `natural_key` of the value."""

    key: str
    label: str
    expr: Any = None
    get: Callable[[Any], Any] | None = None
    natural: bool = True


@dataclass
class ListState:
    """What the query string asks of a list; `url()` gives the address of the same list with some of it
    changed (defaults are left out, so the plain address is the first page)."""

    q: str = ""
    sort: str = ""
    desc: bool = False
    page: int = 1
    per_page: int = PER_PAGE
    filters: dict[str, str] = field(default_factory=dict)
    default_sort: str = ""
    default_desc: bool = False
    endpoint: str = ""
    view_args: dict = field(default_factory=dict)

    @classmethod
    def from_request(cls, columns: Sequence[Column], default_sort: str, default_desc: bool = False,
                     filters: Iterable[str] = (), endpoint: str | None = None) -> ListState:
        """The list's state from request.args; what is not understood falls back to the default (an
        unknown column, a page that is not a number), so a hand-edited address never fails. The list's
        links go to `endpoint` (with no view arguments) when given, else to the page asked for."""
        args = request.args
        keys = {c.key for c in columns}
        sort = args.get("sort", "")
        if sort not in keys:
            sort = default_sort
        direction = args.get("dir", "")
        if direction in ("asc", "desc"):
            desc = direction == "desc"
        else:
            desc = default_desc and sort == default_sort
        per_page = args.get("per_page", PER_PAGE, type=int)
        per_page = min(per_page, MAX_PER_PAGE) if per_page and per_page > 0 else PER_PAGE
        page = min(max(args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
        chosen = {name: args.get(name, "").strip()[:MAX_QUERY] for name in filters}
        return cls(q=args.get("q", "").strip()[:MAX_QUERY], sort=sort, desc=desc, page=page, per_page=per_page,
                   filters={k: v for k, v in chosen.items() if v}, default_sort=default_sort,
                   default_desc=default_desc, endpoint=endpoint or request.endpoint or "",
                   view_args={} if endpoint else dict(request.view_args or {}))

    def args(self, **changes) -> dict:
        """The query arguments of this state with `changes` applied, defaults left out."""
        values = {"q": self.q, "sort": self.sort, "dir": "desc" if self.desc else "asc", "page": self.page,
                  "per_page": self.per_page, **self.filters}
        values.update(changes)
        if values.get("sort") == self.default_sort and values.get("dir") == ("desc" if self.default_desc else "asc"):
            values.pop("sort")
            values.pop("dir")
        if values.get("per_page") == PER_PAGE:
            values.pop("per_page")
        if values.get("page") == 1:
            values.pop("page")
        return {k: v for k, v in values.items() if v not in ("", None)}

    def url(self, **changes) -> str:
        """This list's address with `changes` (page=, sort=, dir=, q=, a filter) applied."""
        return url_for(self.endpoint, **self.view_args, **self.args(**changes))

    def sort_url(self, key: str) -> str:
        """The address that sorts by column `key`: ascending first, reversed when it is already sorted so."""
        desc = not self.desc if key == self.sort else False
        return self.url(sort=key, dir="desc" if desc else "asc", page=1)

    def aria_sort(self, key: str) -> str:
        """The header's aria-sort value."""
        if key != self.sort:
            return "none"
        return "descending" if self.desc else "ascending"

    @property
    def base_url(self) -> str:
        return url_for(self.endpoint, **self.view_args)

    @property
    def cleared_url(self) -> str:
        """The same list, sorted the same way, with no search and no filter."""
        return self.url(q="", page=1, **dict.fromkeys(self.filters, ""))

    @property
    def per_page_choices(self) -> list[int]:
        return sorted({*PER_PAGE_CHOICES, self.per_page})

    @property
    def searching(self) -> bool:
        return bool(self.q or self.filters)


@dataclass
class Page:
    """One page of a list: its rows, how many matched in all, and the state that chose them."""

    rows: list
    total: int
    state: ListState

    @property
    def pages(self) -> int:
        return max((self.total + self.state.per_page - 1) // self.state.per_page, 1)

    @property
    def first(self) -> int:
        """The position of the page's first row (0 when the page is empty)."""
        return (self.state.page - 1) * self.state.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0

    @property
    def showing(self) -> str:
        """"showing 51–100 of 1,234" (or what is shown when nothing matched)."""
        if not self.total:
            return "nothing matches" if self.state.searching else "none yet"
        return f"showing {self.first:,}–{self.last:,} of {self.total:,}"


def _last_page_at_most(state: ListState, total: int) -> int:
    """Bring a page past the end back to the last one (an address kept while rows were deleted); the
    offset of the page's first row."""
    last = max((total + state.per_page - 1) // state.per_page, 1)
    state.page = min(state.page, last)
    return (state.page - 1) * state.per_page


def search_terms(text: str) -> list[str]:
    """The words searched for; a word in another script is searched as typed and as its IDNA form, so
    "пример" finds the zone stored as xn--e1afmkfd and "info@пример.рф" the mailbox info@xn--e1afmkfd.xn--p1ai."""
    terms = []
    for word in text.split():
        terms.append(word)
        if not word.isascii():
            local, at, domain = word.casefold().rpartition("@")
            try:
                labels = ["xn--" + label.encode("punycode").decode("ascii") if not label.isascii() else label
                          for label in domain.split(".")]
            except UnicodeError:
                continue
            terms.append(f"{local}{at}{'.'.join(labels)}")
    return terms


def _search_clause(columns: Sequence[Any], word_terms: list[str]):
    return or_(*(c.icontains(term, autoescape=True) for c in columns for term in word_terms))


def search_select(query: Select, text: str, columns: Sequence[Any]) -> Select:
    """Rows where every word typed appears in one of `columns`, case-insensitively (% and _ are plain)."""
    for word in text.split():
        query = query.where(_search_clause(columns, search_terms(word)))
    return query


def page_of_select(query: Select, state: ListState, columns: Sequence[Column], id_column: Any,
                   search: Sequence[Any] = ()) -> Page:
    """One page of the ORM select `query` (filters already applied) for `state`; `search` names the
    columns the search box matches. `id_column` breaks ties and picks the page's rows."""
    if state.q and search:
        query = search_select(query, state.q, search)
    column = next(c for c in columns if c.key == state.sort)
    total = db.session.scalar(select(func.count()).select_from(
        query.with_only_columns(id_column).order_by(None).subquery())) or 0
    if column.natural and total <= NATURAL_LIMIT:
        pairs = db.session.execute(query.with_only_columns(id_column, column.expr).order_by(None)).all()
        pairs.sort(key=lambda p: (natural_key(p[1]), p[0]), reverse=state.desc)
        offset = _last_page_at_most(state, len(pairs))
        ids = [p[0] for p in pairs[offset:offset + state.per_page]]
        loaded = db.session.scalars(query.where(id_column.in_(ids))).unique() if ids else []
        found = {r.id: r for r in loaded}
        return Page([found[i] for i in ids if i in found], len(pairs), state)
    offset = _last_page_at_most(state, total)
    order = column.expr.desc() if state.desc else column.expr.asc()
    tie = id_column.desc() if state.desc else id_column.asc()
    rows = db.session.scalars(query.order_by(order, tie).limit(state.per_page).offset(offset)).unique().all()
    return Page(list(rows), total, state)


def page_of_rows(rows: Iterable[Any], state: ListState, columns: Sequence[Column],
                 search: Callable[[Any], Iterable[Any]] | None = None) -> Page:
    """One page of rows already in memory; `search` gives the values of a row the search box matches."""
    chosen = list(rows)
    if state.q and search:
        words = [search_terms(w) for w in state.q.split()]

        def matches(row) -> bool:
            haystack = " ".join(str(v) for v in search(row) if v is not None).casefold()
            return all(any(t.casefold() in haystack for t in terms) for terms in words)

        chosen = [r for r in chosen if matches(r)]
    column = next(c for c in columns if c.key == state.sort)
    chosen.sort(key=lambda r: natural_key(column.get(r)), reverse=state.desc)
    offset = _last_page_at_most(state, len(chosen))
    return Page(chosen[offset:offset + state.per_page], len(chosen), state)
