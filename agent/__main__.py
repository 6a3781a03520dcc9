"""Command line: `python -m agent init ...` sets a node up, `python -m agent serve` runs it."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from agent import __version__
from agent.config import DEFAULT_PORT, INIT_SYSTEMS, AgentConfig, ConfigError, initialize


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 hosts in brackets) as a (host, port) pair."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_reload_command(value: str) -> tuple[str, list[str]]:
    """SERVICE=COMMAND as (service, argv), the command split like a shell would."""
    service, sep, command = value.partition("=")
    argv = shlex.split(command)
    if not sep or not service or not argv:
        raise argparse.ArgumentTypeError(f"expected SERVICE=COMMAND, got {value!r}")
    return service, argv


def build_parser() -> argparse.ArgumentParser:
    """The `agent` command line with its `init` and `serve` subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m agent",
        description="Hostfleet node agent: serves the master's signed HTTPS requests.",
    )
    parser.add_argument("--version", action="version", version=f"hostfleet-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the agent's HTTPS server until SIGTERM/SIGINT",
        description=(
            "Serve signed HTTPS requests from the master until SIGTERM or SIGINT. Refuses to "
            "start (exit status 2) if the config, the secret or the TLS key file is readable "
            "by group or others."
        ),
    )
    serve.add_argument("--config", required=True, help="path to the JSON config file (mode 0600)")

    init = sub.add_parser(
        "init",
        help="write the config, create the secret and the TLS certificate if absent",
        description=(
            "Write the agent's config file (mode 0600), generate the per-node secret if the "
            "secret file is absent (mode 0600), and make a self-signed certificate if there is "
            "none. Prints JSON with the certificate fingerprint and the config (never the "
            "secret). Safe to run again: the config is rewritten from these arguments, an "
            "existing secret and certificate are kept."
        ),
    )
    init.add_argument("--config", required=True, help="where to write the config file")
    init.add_argument("--root", required=True, help="prefix for every managed file ('/' in production)")
    init.add_argument("--state-dir", required=True, help="the agent's own state (created 0700)")
    init.add_argument(
        "--listen",
        type=parse_listen,
        default=("0.0.0.0", DEFAULT_PORT),
        metavar="HOST:PORT",
        help=f"address to listen on (default 0.0.0.0:{DEFAULT_PORT})",
    )
    init.add_argument("--secret-file", required=True, help="hex secret shared with the master")
    init.add_argument(
        "--roles",
        default="",
        help="comma-separated roles of this node: web, dns, mail, db (default none)",
    )
    init.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="DNS name for the certificate; repeatable (default: this machine's hostname)",
    )
    init.add_argument("--address", action="append", default=[], help="IP address for the certificate; repeatable")
    init.add_argument(
        "--reload-command",
        type=parse_reload_command,
        action="append",
        default=[],
        metavar="SERVICE=COMMAND",
        help="how to reload a service, e.g. nginx='systemctl reload nginx'; repeatable",
    )
    init.add_argument("--log-file", help="also log to this file")
    init.add_argument(
        "--init-system",
        choices=INIT_SYSTEMS,
        default="systemd",
        help="how the node starts and enables services: systemd units (default) or init scripts (sysv)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; configuration problems exit with status 2 and a one-line message."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "init":
            host, port = args.listen
            result = initialize(
                args.config,
                root=args.root,
                state_dir=args.state_dir,
                secret_file=args.secret_file,
                listen_host=host,
                listen_port=port,
                roles=[r.strip() for r in args.roles.split(",") if r.strip()],
                hostnames=args.hostname,
                addresses=args.address,
                log_file=args.log_file,
                reload_commands=dict(args.reload_command),
                init_system=args.init_system,
            )
            print(json.dumps(result, indent=2))
            return 0
        from agent.server import serve

        serve(AgentConfig.load(args.config))
        return 0
    except (ConfigError, ValueError, OSError) as exc:
        print(f"hostfleet-agent: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
