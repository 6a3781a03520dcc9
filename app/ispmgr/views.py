"""/ispmgr: ISPmanager 5's HTTP API for billing systems (docs/ispmgr.md).

Every answer is HTTP 200 with the outcome inside the document; credentials come from the parameters
(authinfo, auth, a key), never from the panel's session cookie, so the endpoint is exempt from CSRF
tokens without a browser's cookie being able to act through it.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

from flask import Blueprint, redirect, request, session, url_for
from flask_login import login_user

from app.extensions import csrf, db
from app.ispmgr import db_funcs, preset_funcs, userdata_funcs
from app.ispmgr import session as ispmgr_session
from app.ispmgr.doc import Element, IspError, new_doc, render
from app.ispmgr.funcs import FUNCS, LEVELS, Call, translated
from app.models import User
from app.services.userdata import UserDataError

bp = Blueprint("ispmgr", __name__)
csrf.exempt(bp)
FUNCS.update(userdata_funcs.handlers())
FUNCS.update(preset_funcs.handlers())
FUNCS.update(db_funcs.handlers())


# Funcs whose answer can hold every customer or record: the cyclic garbage collector is held off while
# they are read and rendered (tens of thousands of short-lived, acyclic objects would otherwise set off
# full collections over the whole process, several times the list's own cost); reference counting still
# frees them, and the collector runs again as soon as the answer is made.
LONG_LISTS = frozenset({"user", "webdomain", "site", "domain", "emaildomain", "email", "domain.record"})


@contextmanager
def _collector_held(held: bool):
    """gc disabled inside, when held and it was enabled."""
    resume = held and gc.isenabled()
    if resume:
        gc.disable()
    try:
        yield
    finally:
        if resume:
            gc.enable()


def parameters() -> dict[str, str]:
    """The query string and a form body merged (the body wins)."""
    params = dict(request.args.items())
    params.update(request.form.items())
    return params


@bp.route("/ispmgr", methods=["GET", "POST"])
def endpoint():
    """One call: func= plus its parameters, answered in out=xml|json|text."""
    params = parameters()
    func = params.get("func", "")
    out = params.get("out", "xml")
    with _collector_held(func in LONG_LISTS):
        try:
            if func == "auth" and params.get("key"):
                return _key_login(params)
            doc = _dispatch(func, params)
        except IspError as exc:
            db.session.rollback()
            doc = exc.to_doc(func)
        except UserDataError as exc:
            db.session.rollback()
            doc = translated(exc).to_doc(func)
        body, content_type = render(doc, out)
    return body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"}


def _dispatch(func: str, params: dict[str, str]) -> Element:
    """Authenticate, resolve su=, check the level, run the func."""
    if func == "auth":
        user = ispmgr_session.check_password(params.get("username", ""), params.get("password", ""))
        doc = new_doc(func)
        sid = ispmgr_session.open_session(user)
        doc.add("auth", sid, id=sid, level=LEVELS[user.level])
        return doc
    caller = _caller(params)
    if func not in FUNCS:
        raise IspError("missed", func[:64] or "func", f"Could not find the function {func[:64]!r}")
    handler, admin_only = FUNCS[func]
    actor = _acting_as(caller, params.get("su", ""))
    if admin_only and not actor.is_admin:
        raise IspError("access", func, f"{actor.name} may not call {func}")
    return handler(Call(func, params, caller, actor))


def _caller(params: dict[str, str]) -> User:
    """The account behind authinfo or an auth session id."""
    if params.get("authinfo"):
        return ispmgr_session.from_authinfo(params["authinfo"])
    if params.get("auth"):
        return ispmgr_session.from_session(params["auth"])
    raise IspError("auth", "authinfo", "Authentication required: authinfo=login:password or auth=<session id>")


def _acting_as(caller: User, su: str) -> User:
    """su=<login>: an administrator acting as a user; anyone may name themselves."""
    if not su or su == caller.name:
        return caller
    if not caller.is_admin:
        raise IspError("access", "su", f"{caller.name} may not act as another user", su[:64])
    target = None if "\x00" in su else db.session.scalar(db.select(User).where(User.name == su))
    if target is None:
        raise IspError("value", "su", f"No user {su[:64]}", su[:64])
    return target


def _key_login(params: dict[str, str]):
    """func=auth&username=U&key=K: the panel opens logged in as U (a key made by session.newkey)."""
    user = ispmgr_session.user_for_key(params.get("username", ""), params["key"])
    session.clear()  # a fresh session on login (no fixation)
    session.permanent = True
    login_user(user)
    return redirect(url_for("main.index"), 303)

