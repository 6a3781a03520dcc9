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
    from agent.ops import mail, users, web

    name = v.username(owner, "name")
    data = v.object_fields(data, "body", FIELDS)
    if "suspended" not in data:
        raise v.ValidationError("suspended", "required: true or false")
    flag = v.boolean(data["suspended"], "suspended")
    with apply.OP_LOCK:
        before = owners(config)
        wanted = before | {name} if flag else before - {name}
        web_result = web.apply_suspended(config, wanted)
        try:
            mail_result = mail.apply_suspended(config, wanted)
            try:
                login_changed = users.set_login(config, name, flag)
            except BaseException:
                mail.apply_suspended(config, before)
                raise
        except BaseException:
            # The sites already changed: put them back as they were so every service agrees.
            web.apply_suspended(config, before)
            raise
        apply.save_records(config, KIND, sorted(wanted))
    return {"name": name, "suspended": flag,
            "changed": web_result.changed or mail_result.changed or login_changed}
