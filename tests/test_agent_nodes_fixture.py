"""The loopback agent-node fixture the cluster tests build on answers signed calls."""


def test_two_loopback_agents_answer(app, agent_nodes):
    from app.extensions import db
    from app.models import Node
    from app.services.collector import collect_stats

    first = agent_nodes.add("n1", roles=("web",))
    second = agent_nodes.add("n2", roles=("mail",), weight=50)
    with app.app_context():
        assert collect_stats() == {first: "ok", second: "ok"}
        assert db.session.get(Node, second).stats["roles"].keys() == {"mail"}
    agent_nodes.agents[second].stop()
    with app.app_context():
        summary = collect_stats()
    assert summary[first] == "ok" and summary[second] != "ok" and "127.0.0.1" in summary[second]
