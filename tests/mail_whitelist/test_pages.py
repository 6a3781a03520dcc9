"""Mail → Whitelist: the list page with its add form; each change a distributed request."""

from __future__ import annotations

from tests.system_list_pages import ListPageTests


class TestWhitelistPage(ListPageTests):
    PATH = "/mail/whitelist"
