"""`flask` commands for what an operator scripts."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from app.extensions import db
from app.models import Node, User, UserLevel
from app.services import accounts


def register_cli(app: Flask) -> None:
    """Attach the command groups."""

    @app.cli.command("create-admin")
    @click.argument("name")
    @click.password_option(help="The new administrator's password (asked when not given).")
    def create_admin(name: str, password: str) -> None:
        """Create an administrator account."""
        from app.blueprints.auth.forms import validate_user_name

        problem = validate_user_name(name)
        if problem:
            raise click.BadParameter(problem, param_hint="NAME")
        if db.session.scalar(select(User).where(User.name == name)):
            raise click.BadParameter(f"a user named {name!r} already exists", param_hint="NAME")
        if len(password) < 8:
            raise click.BadParameter("at least 8 characters", param_hint="--password")
        accounts.create_user(name, password, UserLevel.ADMIN)
        click.echo(f"administrator {name} created")

    nodes = AppGroup("nodes", help="Cluster nodes.")
    app.cli.add_command(nodes)

    @nodes.command("list")
    def list_nodes() -> None:
        """List the nodes with state, roles, address and last poll."""
        rows = db.session.scalars(select(Node).order_by(Node.id)).all()
        click.echo(f"{'id':>3}  {'name':<16} {'state':<13} {'address':<18} {'roles':<16} last seen")
        for n in rows:
            flags = "".join(
                f for f, on in ((" local", n.is_local), (" maint", n.maintenance), (" locked", n.users_locked)) if on
            )
            seen = n.last_seen.strftime("%Y-%m-%d %H:%M:%S") if n.last_seen else "never"
            click.echo(
                f"{n.id:>3}  {n.name:<16} {n.state:<13} {n.address:<18} {','.join(n.roles or []):<16} {seen}{flags}"
            )

    @nodes.command("add")
    @click.argument("name")
    @click.argument("address")
    @click.option("--ssh-port", default=22, show_default=True, help="The node's SSH port.")
    @click.option("--roles", default="web,dns,mail", show_default=True, help="Comma-separated roles.")
    @click.option("--weight", default=100, show_default=True, help="Placement weight.")
    @click.option("--private-key-file", type=click.File("r"), help="Root's private key instead of the password.")
    @click.option("--host-key-fingerprint", help="SHA256:... the node's SSH host key must match.")
    def add_node(name, address, ssh_port, roles, weight, private_key_file, host_key_fingerprint) -> None:
        """Add a node over SSH (asks for root's password unless --private-key-file) and start its setup."""
        from flask import current_app

        from app.services import setup

        data = {"name": name, "address": address, "ssh_port": ssh_port, "weight": weight,
                "roles": [r.strip() for r in roles.split(",") if r.strip()],
                "host_key_fingerprint": host_key_fingerprint}
        if private_key_file:
            data["private_key"] = private_key_file.read()
        else:
            data["password"] = click.prompt(f"root password for {address}", hide_input=True)
        try:
            # The operator at the master's console sees the key pinned below (the API and the form require it).
            node_input = setup.validate_node_input(data, require_fingerprint=False)
            node, operation = setup.add_node(node_input, user_id=None,
                                             data_dir=current_app.config["DATA_DIR"])
        except setup.InputErrors as exc:
            raise click.ClickException("; ".join(f"{k}: {v}" for k, v in exc.fields.items())) from None
        except setup.SetupError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"node {node.name} (id {node.id}) added, host key {node.host_key_fingerprint}; "
                   f"setup runs as operation {operation.id}")
