"""Command line of the lab: python -m tests.lab {up,up-sysv,down,status,cut,heal,recreate,exec,ssh,build,bench}."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tests.lab.lab import SYSV_INDEX, Lab, LabError, build_cache, preflight


def _print_nodes(lab: Lab) -> None:
    for nd in lab.nodes:
        print(f"{nd.name:<10} {nd.address:<14} root password: {nd.root_password}")
    print(f"repository: {lab.repo_line}")
    print(f"helper key: {lab.state.get('ssh_key')}")


def cmd_up(args) -> int:
    reason = preflight()
    if reason:
        print(f"lab cannot run here: {reason}", file=sys.stderr)
        return 2
    lab = Lab()
    timings = lab.up(args.nodes)
    if args.json:
        print(json.dumps({"timings": timings, **lab.status()}, indent=2))
        return 0
    _print_nodes(lab)
    if "cold_build_seconds" in timings:
        print(f"cold build (base rootfs + repository): {timings['cold_build_seconds']} s")
    if timings.get("nodes_started"):
        print(f"warm start: {timings['nodes_started']} node(s) in {timings['warm_start_seconds']} s "
              f"({timings['seconds_per_node']} s per node)")
    else:
        print("lab already up")
    return 0


def cmd_up_sysv(args) -> int:
    reason = preflight()
    if reason:
        print(f"lab cannot run here: {reason}", file=sys.stderr)
        return 2
    nd = Lab().up_sysv(args.index, fresh=args.fresh)
    print(f"{nd.name:<10} {nd.address:<14} root password: {nd.root_password}  (no systemd: init scripts)")
    return 0


def cmd_down(args) -> int:
    Lab().down()
    print("lab down")
    return 0


def cmd_status(args) -> int:
    st = Lab().status()
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"lab: {'up' if st['up'] else 'down'}   bridge: {st['bridge'] or '-'}   "
          f"repository server: {'running' if st['repo_server'] else 'stopped'} ({st['repo_url']})")
    for n in st["nodes"]:
        state = "running" if n["running"] else "stopped"
        extra = ""
        if n["running"]:
            extra = (f" ssh:{'yes' if n.get('ssh') else 'no'} link:{n.get('link', '?')}"
                     f" mem:{n.get('memory_mib', '?')}MiB")
        print(f"{n['name']:<10} {n['address']:<14} {state}{extra}  root password: {n['root_password']}")
    return 0 if st["up"] or not st["nodes"] else 1


def cmd_cut(args) -> int:
    Lab().node(args.node).cut()
    print(f"{args.node}: link cut")
    return 0


def cmd_heal(args) -> int:
    Lab().node(args.node).heal()
    print(f"{args.node}: link up")
    return 0


def cmd_recreate(args) -> int:
    nd = Lab().recreate(args.node, new_password=args.new_password)
    print(f"{nd.name:<10} {nd.address:<14} root password: {nd.root_password}  (new host keys)")
    return 0


def cmd_exec(args) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        print("exec needs a command after --", file=sys.stderr)
        return 2
    node = Lab().node(args.node)
    os.execvp("nsenter", node.exec_argv(cmd))


def cmd_ssh(args) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    argv = Lab().node(args.node).ssh_argv(*cmd)
    os.execvp(argv[0], argv)


def cmd_build(args) -> int:
    print(json.dumps(build_cache()))
    return 0


def cmd_bench(args) -> int:
    """Measure warm start for 1 and 5 nodes and idle memory per node (takes the lab down first)."""
    lab = Lab()
    result = {"cache": build_cache()}
    for n in args.sizes:
        lab.down()
        timings = lab.up(n)
        time.sleep(args.settle)
        mem = [round(nd.memory_kib() / 1024, 1) for nd in lab.nodes]
        result[f"n{n}"] = {**timings, "idle_memory_mib": mem,
                           "idle_memory_mib_avg": round(sum(mem) / len(mem), 1)}
        print(json.dumps({f"n{n}": result[f"n{n}"]}), flush=True)
    if not args.keep:
        lab.down()
    print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the subcommand."""
    p = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("up", help="start (or extend) a lab of N nodes")
    s.add_argument("-n", "--nodes", type=int, default=3)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_up)
    s = sub.add_parser("up-sysv", help="start one node without systemd (a shell init runs its init scripts)")
    s.add_argument("-i", "--index", type=int, default=SYSV_INDEX, help=f"node index (default {SYSV_INDEX})")
    s.add_argument("--fresh", action="store_true", help="reinstall it from the base first")
    s.set_defaults(func=cmd_up_sysv)
    sub.add_parser("down", help="stop the lab and remove everything but the cache").set_defaults(func=cmd_down)
    s = sub.add_parser("status", help="show the lab")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
    for name, fn, hlp in (("cut", cmd_cut, "cut a node's link"), ("heal", cmd_heal, "restore a node's link")):
        s = sub.add_parser(name, help=hlp)
        s.add_argument("node")
        s.set_defaults(func=fn)
    s = sub.add_parser("recreate", help="reinstall a node from the base (new host keys)")
    s.add_argument("node")
    s.add_argument("--new-password", action="store_true")
    s.set_defaults(func=cmd_recreate)
    for name, fn, hlp in (("exec", cmd_exec, "run a command in a node (nsenter)"),
                          ("ssh", cmd_ssh, "ssh into a node as root with the lab's key")):
        s = sub.add_parser(name, help=hlp)
        s.add_argument("node")
        s.add_argument("cmd", nargs=argparse.REMAINDER)
        s.set_defaults(func=fn)
    sub.add_parser("build", help="build the cached base rootfs and repository").set_defaults(func=cmd_build)
    s = sub.add_parser("bench", help="measure warm start and idle memory")
    s.add_argument("--sizes", type=int, nargs="+", default=[1, 5])
    s.add_argument("--settle", type=float, default=20.0)
    s.add_argument("--keep", action="store_true")
    s.set_defaults(func=cmd_bench)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
