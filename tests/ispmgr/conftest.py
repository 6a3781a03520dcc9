"""Fixtures for /ispmgr: the user-data cluster (loopback agents) and a billing-module-like client."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.support.panel import Users


class Billing:
    """Calls /ispmgr the way billing modules do: form-encoded GET or POST, then parses the answer."""

    def __init__(self, client, login: str = "root", password: str = Users.PASSWORD):
        self.client = client
        self.authinfo = f"{login}:{password}"

    def raw(self, method: str = "GET", **params):
        """The HTTP answer to one call (always asserted 200, as ISPmanager answers)."""
        if method == "GET":
            response = self.client.get("/ispmgr", query_string=params)
        else:
            response = self.client.post("/ispmgr", data=params)
        assert response.status_code == 200, response.text
        return response

    def json(self, func: str, method: str = "GET", **params) -> dict:
        """doc of out=json."""
        params.setdefault("authinfo", self.authinfo)
        answer = self.raw(method, func=func, out="json", **params)
        assert answer.mimetype == "application/json"
        return json.loads(answer.text)["doc"]

    def xml(self, func: str, method: str = "GET", **params) -> ET.Element:
        """<doc> of out=xml, through a strict parser."""
        params.setdefault("authinfo", self.authinfo)
        answer = self.raw(method, func=func, out="xml", **params)
        assert answer.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
        return ET.fromstring(answer.data)

    def text(self, func: str, method: str = "GET", **params) -> str:
        """The out=text answer."""
        params.setdefault("authinfo", self.authinfo)
        return self.raw(method, func=func, out="text", **params).text


@pytest.fixture
def billing(app, client, cluster, users):
    """A ready node, the administrator `root` and a billing client logged in as root by authinfo."""
    cluster.node("a")
    users.make("root", admin=True)
    return Billing(client)
