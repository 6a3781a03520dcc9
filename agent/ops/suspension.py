"""Suspended owners: their sites answer a "suspended" page, their mailboxes and SFTP refuse logins."""

from __future__ import annotations

from agent import validation as v
from agent.ops import apply

KIND = "suspended"
FIELDS = ("suspended",)


def owners(config) -> set[str]:
    """The owners suspended on this node."""
    return set(apply.load_records(config, KIND))


def get(config, owner: str) -> dict:
    """Whether an owner is suspended here."""
    name = v.username(owner, "name")
    return {"name": name, "suspended": name in owners(config)}


def set_suspended(config, owner: str, data: object) -> dict:
    """Suspend or resume an owner's sites, mailboxes and SFTP login; all take it or none does.

    Returns {"name", "suspended", "changed"}; idempotent.
    """
    from agent.ops import mail, sftp, users, web

    name = v.username(owner, "name")
    data = v.object_fields(data, "body", FIELDS)
    if "suspended" not in data:
        raise v.ValidationError("suspended", "required: true or false")
    flag = v.boolean(data["suspended"], "suspended")
    with apply.OP_LOCK:
        before = owners(config)
        wanted = before | {name} if flag else before - {name}
        # Only the services this node holds: a web-only node has no exim to check mail files with.
        services = [ops for ops, role in ((web, "web"), (mail, "mail"))
                    if role in config.roles or ops.list_domains(config)]
        done, changed = [], False
        try:
            for ops in services:
                changed = ops.apply_suspended(config, wanted).changed or changed
                done.append(ops)
            changed = users.set_login(config, name, flag) or changed
        except BaseException:
            # What already changed is put back as it was, so every service agrees.
            for ops in reversed(done):
                ops.apply_suspended(config, before)
            raise
        if flag:
            users.end_processes(config, name, names=sftp.SESSION_PROGRAMS)
        apply.save_records(config, KIND, sorted(wanted))
    return {"name": name, "suspended": flag, "changed": changed}
