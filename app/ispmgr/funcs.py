"""The ISPmanager funcs billing systems call, each a thin translation onto the users and plans services
(docs/ispmgr.md): the same validation and access rules as /api/v1, only the names and shapes differ."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from agent import validation as v
from app.extensions import db
from app.ispmgr import session as ispmgr_session
from app.ispmgr.doc import Element, IspError, new_doc
from app.models import Node, Placement, User, UserLevel, WebDomainIndex
from app.models.userdata import LIMIT_KEYS
from app.services import accounts, user_usage, userdata, users
from app.services.userdata import UserDataError

LEVELS = {UserLevel.ADMIN.value: "29", UserLevel.USER.value: "16"}
# Hostfleet's limit names and ISPmanager's (limit_quota is MiB, as disk_mb is).
LIMIT_PARAMS = {"disk_mb": "limit_quota", "webdomains": "limit_webdomains", "domains": "limit_domains",
                "maildomains": "limit_emaildomains", "mailboxes": "limit_emails", "databases": "limit_db",
                "dbusers": "limit_db_users", "ftp_users": "limit_ftp_users"}
PARAM_LIMITS = {param: key for key, param in LIMIT_PARAMS.items()}
# A service's field names as ISPmanager's parameters, for the `object` of an error.
FIELD_PARAMS = {"name": "name", "password": "passwd", "plan": "preset", "owner": "name", "body": "func",
                **{f"limits.{key}": param for key, param in LIMIT_PARAMS.items()}, "limits": "limit"}
PRODUCT = "Hostfleet (ISPmanager 5 Business API)"


@dataclass
class Call:
    """One /ispmgr call: its parameters, who authenticated and who it acts as (su=)."""

    func: str
    params: dict[str, str]
    caller: User
    actor: User

    def get(self, name: str) -> str | None:
        """A parameter, None when absent."""
        return self.params.get(name)

    @property
    def saving(self) -> bool:
        """sok given and not empty: a form func saves instead of showing."""
        return bool(self.params.get("sok"))


def translated(exc: UserDataError) -> IspError:
    """A service refusal as ISPmanager's error, its object the parameter at fault."""
    field = next(iter(exc.fields), "")
    param = FIELD_PARAMS.get(field, field or "func")
    if exc.status == 409 and "exists" in exc.message:
        return IspError("exists", "preset" if param == "name" and "plan" in exc.message else "user", exc.message,
                        param)
    if exc.status in (400, 409, 422):
        return IspError("value", param, exc.message)
    if exc.status == 403:
        return IspError("access", param, exc.message)
    return IspError("sys", param, exc.message)


def elids(call: Call) -> list[str]:
    """The keys of a group operation, `", "`-separated; at least one."""
    keys = [k.strip() for k in (call.get("elid") or "").split(",") if k.strip()]
    if not keys:
        raise IspError("value", "elid", "elid is required: the key(s) of the object(s)")
    return keys


def whole_number(raw: str) -> bool:
    """ASCII digits only, at most 9 of them: str.isdigit() also takes '²' and '٣', and int() refuses the
    first and a string of over 4,300 digits (a 500 instead of ISPmanager's value error)."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 9


def limits_from(call: Call) -> dict[str, int]:
    """The limit_* parameters given (empty ones and unknown limit names are ignored, as ISPmanager does)."""
    limits = {}
    for param, key in PARAM_LIMITS.items():
        raw = call.get(param)
        if raw is None or raw.strip() == "":
            continue
        if not whole_number(raw.strip()):
            raise IspError("value", param, f"{param} must be a whole number", raw[:64])
        limits[key] = int(raw.strip())
    return limits


def password_from(call: Call) -> str | None:
    """passwd, checked against confirm when confirm is given."""
    password = call.get("passwd")
    confirm = call.get("confirm")
    if password is not None and confirm is not None and confirm != password:
        raise IspError("value", "confirm", "confirm does not match passwd")
    return password


def customer(name: str) -> User:
    """A hosting customer (level 16) by login; an unknown name is ISPmanager's value(elid)."""
    user = None if "\x00" in name else db.session.scalar(select(User).where(User.name == name))
    if user is None or user.is_admin:
        raise IspError("value", "elid", f"No user {name}", name[:64])
    return user


# ---------------------------------------------------------------- funcs any account may call


def whoami(call: Call) -> Element:
    """<user name level>login</user>."""
    doc = new_doc(call.func)
    doc.add("user", call.actor.name, name=call.actor.name, level=LEVELS[call.actor.level])
    return doc


def license_info(call: Call) -> Element:
    """The product, named so modules that look for "Business" find it."""
    doc = new_doc(call.func)
    doc.add("mgr", "ISPmanager Business")
    doc.add("panel_name", PRODUCT)
    return doc


def proved_password(call: Call) -> bool:
    """The caller gave their password in this call (authinfo), not a session id or an API token: only that
    may set a new one for themselves, as My account asks for the current password (docs/security.md)."""
    authinfo = call.get("authinfo")
    if not authinfo:
        return False
    return not authinfo.partition(":")[2].startswith(accounts.TOKEN_PREFIX)


def usrparam(call: Call) -> Element:
    """The acting account's own settings: view, or change its password with sok."""
    doc = new_doc(call.func)
    if not call.saving:
        doc.add("name", call.actor.name)
        return doc
    password = password_from(call)
    if password is not None:
        if call.actor.id == call.caller.id and not proved_password(call):
            raise IspError("access", "passwd", "Changing your own password needs authinfo=login:password "
                                               "(your current password), not a session id or an API token")
        users.update_user(call.actor, {"password": password})
    doc.add("ok")
    return doc


def session_newkey(call: Call) -> Element:
    """An administrator makes a one-time login key for a user (a billing system's "log in" button)."""
    name = call.get("username") or ""
    user = None if "\x00" in name else db.session.scalar(select(User).where(User.name == name))
    if user is None:
        raise IspError("value", "username", f"No user {name[:64]}", name[:64])
    ispmgr_session.new_key(user, call.get("key") or "")
    doc = new_doc(call.func)
    doc.add("ok")
    return doc


def ipaddr_list(call: Call) -> Element:
    """The addresses the acting account's sites answer on: the nodes holding its web role or its web domains
    (an administrator without su=: every web node). A node known by a host name, not an address, is left out."""
    actor = call.actor
    query = select(Node).order_by(Node.id)
    if actor.is_admin:
        nodes = [n for n in db.session.scalars(query) if "web" in (n.roles or [])]
    else:
        held = select(Placement.node_id).where(Placement.user_id == actor.id, Placement.role == "web").union(
            select(WebDomainIndex.node_id).where(WebDomainIndex.owner_id == actor.id))
        nodes = list(db.session.scalars(query.where(Node.id.in_(held))))
    doc = new_doc(call.func)
    for node in nodes:
        try:
            address = v.ip_address(node.address, "address")
        except v.ValidationError:
            continue
        elem = doc.add("elem")
        elem.add("name", address)
        elem.add("family", "ipv6" if ":" in address else "ipv4")
        elem.add("iprole", "shared")
    return doc


# ---------------------------------------------------------------- users (administrators)


USER_COLUMNS = ("id", "name", "fullname", "comment", "active", "level", "preset", *LIMIT_PARAMS.values(),
                "quota_total", "quota_used")


def _user_row(customer: user_usage.Customer) -> list[str]:
    """One customer as the texts of USER_COLUMNS (an unset limit is empty: no limit)."""
    limits = customer.limits
    return [str(customer.id), customer.name, customer.fullname, customer.comment,
            "on" if customer.active else "off", LEVELS[UserLevel.USER.value], customer.plan or "",
            *(str(limits[key]) if key in limits else "" for key in LIMIT_PARAMS),
            str(limits["disk_mb"]) if "disk_mb" in limits else "",
            "" if customer.disk_used_mb is None else str(customer.disk_used_mb)]


def user_list(call: Call) -> Element:
    """Every hosting customer (or those named by elid), read set-based (app/services/user_usage.py)."""
    names = elids(call) if call.get("elid") else None
    doc = new_doc(call.func)
    doc.add_table(USER_COLUMNS, [_user_row(c) for c in user_usage.customers(names)])
    return doc


def _user_form(call: Call, user: User | None) -> Element:
    """The user form's fields as children of doc."""
    doc = new_doc(call.func)
    shown = users.user_to_dict(user) if user else {"name": "", "plan": None, "limits": {}, "active": True}
    doc.add("name", shown["name"])
    doc.add("fullname", user.fullname if user else "")
    doc.add("comment", user.comment if user else "")
    doc.add("preset", shown["plan"] or "")
    doc.add("active", "on" if shown["active"] else "off")
    for key, param in LIMIT_PARAMS.items():
        doc.add(param, shown.get("effective_limits", {}).get(key, ""))
    if user is not None:
        doc.add("elid", user.name)
    return doc


# ISPmanager's free-text user fields, kept on the user: (parameter, most characters).
PROFILE_PARAMS = (("fullname", 128), ("comment", 1024))


def profile_from(call: Call) -> dict[str, str]:
    """fullname and comment as given (one line of printable text each)."""
    profile = {}
    for param, longest in PROFILE_PARAMS:
        raw = call.get(param)
        if raw is None:
            continue
        try:
            profile[param] = v.text(raw, param, max_length=longest).strip()
        except v.ValidationError as exc:
            raise IspError("value", param, f"{param} {exc.message}", raw[:64]) from None
    return profile


def first_domains(call: Call) -> dict[str, str]:
    """The site and mail domain ISPmanager makes with a new user: webdomain_name and emaildomain_name, unless
    empty or switched off (webdomain=off, emaildomain=off); checked as domain names before anything is made."""
    wanted = {}
    for param, switch, kind in (("webdomain_name", "webdomain", "webdomains"),
                                ("emaildomain_name", "emaildomain", "maildomains")):
        raw = (call.get(param) or "").strip()
        if not raw or call.get(switch) == "off":
            continue
        try:
            v.domain_name(raw, param)
        except v.ValidationError as exc:
            raise IspError("value", param, f"{param}: {exc.message}", raw[:64]) from None
        wanted[kind] = raw
    return wanted


def _make_first_domains(call: Call, user: User, wanted: dict[str, str]) -> None:
    """Create the new user's first site and mail domain as that user, with their DNS (the zone first when the
    user has none over the name), as ISPmanager does; the customer's own rules apply. When one is
    refused, the user is deleted again (on the nodes too) and the refusal names its parameter: the billing
    system sees a failed create, nothing half-made stays behind, and its retry can succeed."""
    params = {"webdomains": "webdomain_name", "maildomains": "emaildomain_name"}
    for kind, name in wanted.items():
        try:
            userdata.create(kind, user, {"name": name, "dns": True})
        except UserDataError as exc:
            db.session.rollback()
            login = user.name
            report = users.delete_user(user)
            undone = "the user was not created" if report["deleted"] else \
                f"the user {login} was created and could not be removed again; delete it"
            raise IspError("exists" if exc.status == 409 and "limit" not in exc.message else "value",
                           params[kind], f"{params[kind]} {name}: {exc.message}; {undone}", name[:64]) from None


def _create_user(call: Call) -> Element:
    """user.edit without elid, user.add, user.add.finish (with sok): a new customer on a plan, with their
    first site and mail domain when asked."""
    data: dict = {"name": call.get("name") or "", "password": password_from(call) or "", "level": "user"}
    limits = limits_from(call)
    if limits:  # a user's own limits exist for the kinds Hostfleet has; the plan keeps the others
        data["limits"] = {k: val for k, val in limits.items() if k in LIMIT_KEYS}
    if call.get("preset"):
        data["plan"] = call.get("preset")
    profile = profile_from(call)
    wanted = first_domains(call)
    user = users.create_user(data)
    if profile:
        for field, value in profile.items():
            setattr(user, field, value)
        db.session.commit()
    _make_first_domains(call, user, wanted)
    doc = new_doc(call.func)
    doc.add("ok")
    doc.add("id", user.name)
    return doc


def _change_user(call: Call, user: User) -> Element:
    """user.edit with elid and sok: plan, limits (given ones only), password, fullname, comment."""
    if call.get("name") not in (None, "", user.name):
        raise IspError("value", "name", "The login cannot change; it is the OS account on every node")
    data: dict = {}
    password = password_from(call)
    if password:
        data["password"] = password
    if call.get("preset"):
        data["plan"] = call.get("preset")
    limits = limits_from(call)
    profile = profile_from(call)
    # A user's own limits exist for the kinds Hostfleet has; the plan keeps the others.
    own = {k: val for k, val in limits.items() if k in LIMIT_KEYS}
    if own:
        account = users.account_of(user)
        data["limits"] = {**((account.limits or {}) if account else {}), **own}
    if data:
        users.update_user(user, data)
    if profile:
        for field, value in profile.items():
            setattr(user, field, value)
        db.session.commit()
    doc = new_doc(call.func)
    doc.add("ok")
    doc.add("id", user.name)
    return doc


def user_edit(call: Call) -> Element:
    """View (elid, no sok), create (sok, no elid) or change (sok and elid) a customer."""
    user = customer(call.get("elid")) if call.get("elid") else None
    if not call.saving:
        return _user_form(call, user)
    return _create_user(call) if user is None else _change_user(call, user)


def user_add(call: Call) -> Element:
    """user.add and user.add.finish: create with sok, the empty form without."""
    return _create_user(call) if call.saving else _user_form(call, None)


def _group(call: Call, operate: Callable[[User], None]) -> Element:
    """A group operation over elid: every key is checked before anything is done."""
    targets = [customer(name) for name in elids(call)]
    for user in targets:
        operate(user)
    doc = new_doc(call.func)
    doc.add("ok")
    return doc


def _delete(user: User) -> None:
    """Delete a customer; a node that could not remove their data is an error naming it."""
    name = user.name
    report = users.delete_user(user)
    if not report["deleted"]:
        failed = "; ".join(f"{r['node']}: {r['error']}" for r in report["nodes"] if r["outcome"] != "applied")
        raise IspError("sys", "elid", f"{name} was not deleted: {failed}", name)


def user_delete(call: Call) -> Element:
    """Delete customers with everything they have on the nodes."""
    return _group(call, _delete)


def user_suspend(call: Call) -> Element:
    """Suspend customers: no login, sites answer "suspended", mailboxes refuse logins."""
    return _group(call, lambda user: users.set_active(user, False))


def user_resume(call: Call) -> Element:
    """Resume suspended customers."""
    return _group(call, lambda user: users.set_active(user, True))


# func → (handler, administrators only)
FUNCS: dict[str, tuple[Callable[[Call], Element], bool]] = {
    "whoami": (whoami, False),
    "session.newkey": (session_newkey, True),
    "license.info": (license_info, False),
    "ipaddr": (ipaddr_list, False),
    "usrparam": (usrparam, False),
    "user": (user_list, True),
    "user.edit": (user_edit, True),
    "user.add": (user_add, True),
    "user.add.finish": (user_add, True),
    "user.delete": (user_delete, True),
    "user.suspend": (user_suspend, True),
    "user.resume": (user_resume, True),
}
