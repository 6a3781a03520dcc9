"""The `flask` commands an operator scripts."""


def test_create_admin_and_log_in(runner, app):
    from app.services.accounts import authenticate

    result = runner.invoke(args=["create-admin", "ops", "--password", "long enough pw"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = authenticate("ops", "long enough pw")
        assert user is not None and user.is_admin


def test_create_admin_bad_input_names_the_argument(runner):
    result = runner.invoke(args=["create-admin", "Bad Name", "--password", "long enough pw"])
    assert result.exit_code != 0 and "NAME" in result.output
    result = runner.invoke(args=["create-admin", "ops", "--password", "short"])
    assert result.exit_code != 0 and "--password" in result.output


def test_nodes_list(runner, app):
    from app.extensions import db
    from app.services.nodes import create_node

    with app.app_context():
        create_node("web1", "198.18.0.11", roles=["web", "dns"], reason="test")
        db.session.commit()
    result = runner.invoke(args=["nodes", "list"])
    assert result.exit_code == 0
    assert "web1" in result.output and "new" in result.output and "web,dns" in result.output
