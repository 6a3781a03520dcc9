"""Mail → Mail domains: the list from the index, a create marked until its node confirms it."""

from __future__ import annotations

from tests.userdata_pages import check_marks_create_in_flight


def test_a_create_in_flight_is_marked(app, client, cluster, alice):
    check_marks_create_in_flight(app, client, alice,
                                 "/mail/domains", "MailDomainIndex", "name", "maildomain", None)
