"""app/listing.py on its own: natural order, the state read from an address and written back, paging
rows in memory, and the search of names stored as IDNA."""

from __future__ import annotations

import pytest

from app.listing import Column, ListState, natural_key, page_of_rows, search_terms


def test_natural_order_puts_numbers_in_value_order_ignoring_case():
    names = ["site10", "site2", "Site11", "client79", "client8", None, "a01", "a1", "v1.10", "v1.9", "site2b"]
    assert sorted(names, key=natural_key) == [None, "a01", "a1", "client8", "client79", "site2", "site2b",
                                              "site10", "Site11", "v1.9", "v1.10"]
    assert sorted([10, 9, 100], key=natural_key) == [9, 10, 100]
    assert natural_key("x" + "9" * 40) > natural_key("x" + "9" * 39), "long numbers too"


def test_a_word_in_another_script_is_also_searched_as_its_idna_form():
    assert search_terms("пример.рф") == ["пример.рф", "xn--e1afmkfd.xn--p1ai"]
    assert search_terms("shop Пример") == ["shop", "Пример", "xn--e1afmkfd"]
    assert search_terms("Info@Пример.рф") == ["Info@Пример.рф", "info@xn--e1afmkfd.xn--p1ai"]


COLUMNS = [Column("name", "Name", get=lambda r: r["name"]), Column("size", "Size", get=lambda r: r["size"])]
ROWS = [{"name": f"row{i}", "size": i % 7} for i in range(1, 131)]


@pytest.mark.parametrize("query, expected", [
    ("", dict(q="", sort="name", desc=False, page=1, per_page=50, filters={})),
    ("?q=+row1+&sort=size&dir=desc&page=3&per_page=20&owner=ann",
     dict(q="row1", sort="size", desc=True, page=3, per_page=20, filters={"owner": "ann"})),
    ("?sort=secret_column&dir=up&page=-4&per_page=0&owner=", dict(sort="name", desc=False, page=1, per_page=50,
                                                                  filters={})),
    ("?page=99999999999&per_page=100000", dict(page=1_000_000, per_page=500)),
])
def test_the_state_is_read_from_the_address_with_defaults_for_what_is_not_understood(app, query, expected):
    with app.test_request_context("/mail/domains" + query):
        state = ListState.from_request(COLUMNS, "name", filters=("owner",))
    for key, value in expected.items():
        assert getattr(state, key) == value, key


def test_links_keep_the_state_and_leave_defaults_out(app):
    with app.test_request_context("/mail/domains?q=a&owner=ann&sort=size&dir=desc&per_page=20&page=2"):
        state = ListState.from_request(COLUMNS, "name", filters=("owner",))
        assert state.url(page=3) == "/mail/domains?q=a&sort=size&dir=desc&page=3&per_page=20&owner=ann"
        assert state.sort_url("size") == "/mail/domains?q=a&sort=size&dir=asc&per_page=20&owner=ann"
        assert state.sort_url("name") == "/mail/domains?q=a&per_page=20&owner=ann"
        assert state.cleared_url == "/mail/domains?sort=size&dir=desc&per_page=20"
        assert state.aria_sort("size") == "descending" and state.aria_sort("name") == "none"


def test_rows_in_memory_are_searched_sorted_and_paged(app):
    with app.test_request_context("/x?q=ROW1&per_page=10&page=2"):
        page = page_of_rows(ROWS, ListState.from_request(COLUMNS, "name"), COLUMNS, search=lambda r: [r["name"]])
    # row1, row10–19, row100–130: 42 rows; page 2 holds the 11th to the 20th in natural order
    assert page.total == 42 and page.pages == 5
    assert [r["name"] for r in page.rows] == ["row19", *(f"row{i}" for i in range(100, 109))]
    assert page.showing == "showing 11–20 of 42"
    with app.test_request_context("/x?q=nothing"):
        empty = page_of_rows(ROWS, ListState.from_request(COLUMNS, "name"), COLUMNS, search=lambda r: [r["name"]])
    assert empty.showing == "nothing matches" and empty.first == 0
