"""Cluster → Policies: valid values are stored, a bad one is shown under its field."""

from __future__ import annotations

from tests.conftest import csrf_from


def test_policies_page_saves_and_refuses_bad_values(admin, app):
    """The policies form stores valid values and shows an error under a bad one."""
    page = admin.get("/cluster/policies")
    assert page.status_code == 200 and 'value="50"' in page.text
    data = {"min_ready_percent": "60", "missed_polls": "3", "poll_interval_s": "10", "placement_resource": "disk",
            "node_apt_source": "", "csrf_token": csrf_from(page.text)}
    assert admin.post("/cluster/policies", data=data).status_code == 302
    bad = admin.post("/cluster/policies", data={**data, "min_ready_percent": "150"})
    assert bad.status_code == 400 and 'data-field="min_ready_percent"' in bad.text
    bad = admin.post("/cluster/policies", data={**data, "node_apt_source": "deb http://x/ b main; reboot"})
    assert bad.status_code == 400 and 'data-field="node_apt_source"' in bad.text
    assert 'value="60"' in admin.get("/cluster/policies").text

