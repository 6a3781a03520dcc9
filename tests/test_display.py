"""app/display.py on its own: names and the text around them read in Unicode, counts with their noun."""

from __future__ import annotations

import pytest

from app.display import counted, idn, unicode_name
from app.services.lists import LISTS


@pytest.mark.parametrize("stored, shown", [
    ("xn--e1afmkfd.xn--p1ai", "пример.рф"),
    ("XN--E1AFMKFD.XN--P1AI", "пример.рф"),
    ("info@xn--e1afmkfd.xn--p1ai", "info@пример.рф"),
    ("ns1.xn--e1afmkfd.xn--p1ai.", "ns1.пример.рф."),
    ("Mailbox info@xn--e1afmkfd.xn--p1ai created.", "Mailbox info@пример.рф created."),
    ("xn--80aairftm.xn--e1afmkfd.xn--p1ai is under alice's zone xn--e1afmkfd.xn--p1ai",
     "магазин.пример.рф is under alice's zone пример.рф"),
    ("shop.example.com is live on n1.", "shop.example.com is live on n1."),
    ("xn--zz-bad.com", "xn--zz-bad.com"),  # not decodable: left as it is
    ("axn--e1afmkfd", "axn--e1afmkfd"),  # not a label of its own
    (None, ""),
    (42, "42"),
])
def test_a_labels_read_in_unicode_in_a_name_and_in_any_text(stored, shown):
    assert unicode_name(stored) == shown


def test_a_name_on_a_page_keeps_its_a_label_as_a_tooltip():
    assert str(idn("xn--e1afmkfd.xn--p1ai")) == '<span title="xn--e1afmkfd.xn--p1ai">пример.рф</span>'
    assert str(idn("<b>example.com</b>")) == "&lt;b&gt;example.com&lt;/b&gt;"


@pytest.mark.parametrize("number, noun, plural, words", [
    (1, "node", None, "1 node"), (0, "node", None, "0 nodes"), (2, "mailbox", "mailboxes", "2 mailboxes"),
    (1, "day", None, "1 day"), (-1, "day", None, "-1 day"),
])
def test_a_count_has_its_noun_in_the_right_number(number, noun, plural, words):
    assert counted(number, noun, plural) == words


def test_the_system_lists_name_their_rows_in_the_plural():
    assert [LISTS[n].plural for n in ("firewall", "scheduler", "mail_whitelist")] == ["rules", "entries", "senders"]
