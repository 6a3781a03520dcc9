"""Trust between master and agents: each node's secret and certificate are its own."""

import pytest

from agent.client import AgentClient, AgentError
from app.extensions import db
from app.models import Node


def node_credentials(app, node_id):
    with app.app_context():
        node = db.session.get(Node, node_id)
        return node.agent_url, node.agent_secret, node.cert_fingerprint


def test_another_nodes_secret_is_refused(app, agent_nodes):
    first = agent_nodes.add("n1", roles=("web",))
    second = agent_nodes.add("n2", roles=("web",))
    url_a, secret_a, fp_a = node_credentials(app, first)
    url_b, secret_b, fp_b = node_credentials(app, second)
    assert secret_a != secret_b and fp_a != fp_b
    assert AgentClient(url_b, secret_b, fp_b).stats()["api_version"] == 1
    with pytest.raises(AgentError) as refused:
        AgentClient(url_b, secret_a, fp_b).stats()
    assert refused.value.kind == "auth" and refused.value.status == 401
    log = (agent_nodes.base / "n2" / "agent.log").read_text()
    assert "bad signature" in log and secret_a not in log and secret_b not in log


def test_another_nodes_certificate_is_refused(app, agent_nodes):
    first = agent_nodes.add("n1", roles=("web",))
    second = agent_nodes.add("n2", roles=("web",))
    _, _, fp_a = node_credentials(app, first)
    url_b, secret_b, _ = node_credentials(app, second)
    with pytest.raises(AgentError) as refused:
        AgentClient(url_b, secret_b, fp_a).stats()
    assert refused.value.kind == "tls" and "certificate" in str(refused.value).lower()


def test_plain_http_to_an_agent_gets_nothing(app, agent_nodes):
    import requests

    node_id = agent_nodes.add("n1", roles=("web",))
    url, _, _ = node_credentials(app, node_id)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url.replace("https://", "http://") + "/v1/stats", timeout=5)
