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
