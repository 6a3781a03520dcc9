"""Domains → SSL certificates: the list with expiry and state, the certificate's page (upload, request,
switches), delete behind its question; the web domain's page links its certificate."""

from __future__ import annotations

import re

from tests.certs.test_certificates_api import own_pair
from tests.conftest import csrf_from
from tests.userdata.conftest import basic

SITE = "pages-certs.example.com"
ALIAS = f"www.{SITE}"


def make_site(client, cluster) -> int:
    """alice's zone and web domain (through the API); the web domain's id."""
    cluster.zones("alice", SITE)
    made = client.post("/api/v1/webdomains", json={"name": SITE, "aliases": [ALIAS]}, headers=basic("alice"))
    assert made.status_code == 201, made.json
    return made.json["id"]


def test_list_and_fragment(client, cluster, alice):
    """The list shows the site as self-signed with no delete; HTMX gets the table only."""
    site = make_site(client, cluster)
    page = client.get("/domains/certificates/")
    assert page.status_code == 200 and f'id="certificate-{site}"' in page.text and "self-signed" in page.text
    assert "Delete the certificate" not in page.text
    fragment = client.get("/domains/certificates/", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="certificates-table"') and "<html" not in fragment.text
    assert "HX-Request" in fragment.headers["Vary"]


def test_upload_through_the_page_then_delete(client, cluster, alice):
    """A bad key is shown under its field (400, nothing installed); a good pair is installed and listed
    with its issuer and expiry; delete (behind its question) goes back to self-signed."""
    site = make_site(client, cluster)
    page = client.get(f"/domains/certificates/{site}")
    assert page.status_code == 200
    key_pem, cert_pem = own_pair([SITE, ALIAS])
    other_key, _ = own_pair([SITE, ALIAS])
    bad = client.post(f"/domains/certificates/{site}", data={"certificate": cert_pem, "key": other_key,
                                                            "csrf_token": csrf_from(page.text)})
    assert bad.status_code == 400 and 'data-field="key"' in bad.text, bad.text
    # The refused key is not sent back in the page (its form field comes back empty).
    assert "".join(other_key.splitlines()[1:-1])[:64] not in "".join(bad.text.split())
    assert cert_pem.splitlines()[1] in bad.text
    assert not (cluster.state(alice) / "tls" / f"{SITE}.crt").exists()
    good = client.post(f"/domains/certificates/{site}", data={"certificate": cert_pem, "key": key_pem,
                                                             "csrf_token": csrf_from(page.text)})
    assert good.status_code == 302, good.text
    listed = client.get("/domains/certificates/").text
    row = re.search(rf'<tr id="certificate-{site}".*?</tr>', listed, re.S).group(0)
    assert "uploaded" in row and "Customer&#39;s own CA" in row and "89 days" in row, row
    assert f"Delete the certificate of {SITE}?" in row
    gone = client.post(f"/domains/certificates/{site}/delete", data={"csrf_token": csrf_from(listed)})
    assert gone.status_code == 302
    assert "self-signed" in re.search(rf'<tr id="certificate-{site}".*?</tr>', client.get(
        "/domains/certificates/").text, re.S).group(0)


def test_request_starts_an_operation_and_bad_names_are_refused(client, cluster, alice):
    """The request button sends the browser to the operation's page; a name not the site's is flashed
    and starts nothing; HTMX gets HX-Redirect."""
    site = make_site(client, cluster)
    page = client.get(f"/domains/certificates/{site}").text
    refused = client.post(f"/domains/certificates/{site}/request",
                          data={"names": "evil.example.org", "csrf_token": csrf_from(page)}, follow_redirects=True)
    assert "evil.example.org" in refused.text and "is not" in refused.text
    assert client.get("/api/v1/operations", headers=basic("alice")).json["items"] == []
    started = client.post(f"/domains/certificates/{site}/request", data={"csrf_token": csrf_from(page)},
                          headers={"HX-Request": "true"})
    assert started.status_code == 204 and started.headers["HX-Redirect"].startswith("/operations/")
    assert "Issue the certificate of" in client.get(started.headers["HX-Redirect"]).text


def test_other_customer_cannot_see_it(client, cluster, auth, alice):
    """bob gets 404 on alice's certificate page and its actions, and an empty list."""
    site = make_site(client, cluster)
    cluster.user("bob")
    client.post("/logout", data={"csrf_token": auth.csrf()})
    auth.login("bob", create=False)
    page = client.get("/domains/certificates/")
    assert SITE not in page.text
    assert client.get(f"/domains/certificates/{site}").status_code == 404
    for action in ("request", "switches", "delete"):
        answer = client.post(f"/domains/certificates/{site}/{action}", data={"csrf_token": auth.csrf()})
        assert answer.status_code == 404, action


def test_web_domain_page_links_its_certificate(client, cluster, alice):
    """The site's page says which certificate it has and links to it."""
    site = make_site(client, cluster)
    page = client.get(f"/domains/web/{site}").text
    assert f'href="/domains/certificates/{site}"' in page and "self-signed" in page
