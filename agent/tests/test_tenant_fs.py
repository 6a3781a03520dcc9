"""Tenant isolation on disk: no op running as root follows a path a customer can change, and homes,
sites and PHP pools are private to their owner.

The customer here is alice (UID 1001); bob (1002) is another customer, and `outside/` stands for the
node's own files (/etc/systemd/system in the report). Every test checks the outcome on disk:
nothing outside alice's home is created, changed or given to her.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import failpoints, homefs, usage
from agent.ops import apply, mail, users, web
from agent.tests.ops_helpers import make_app, make_config, require_binary
from agent.validation import ValidationError

ALICE, BOB, WWW_DATA = 1001, 1002, 33

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ownership (chown) is what is tested: needs root")


def snapshot(*folders: Path) -> dict[str, tuple]:
    """Names, types, modes, owners, mtimes, sizes, file digests and link targets of every entry under
    folders (links not followed): equal before and after means nothing there was created or changed."""
    seen = {}
    for folder in folders:
        for dirpath, dirs, files in os.walk(folder):
            for name in [".", *dirs, *files]:
                path = os.path.join(dirpath, name)
                st_ = os.lstat(path)
                detail: object = None
                if stat.S_ISREG(st_.st_mode):
                    detail = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                elif stat.S_ISLNK(st_.st_mode):
                    detail = os.readlink(path)
                seen[os.path.normpath(path)] = (st_.st_mode, st_.st_uid, st_.st_gid, st_.st_mtime_ns, st_.st_size,
                                                detail)
    return seen


def customer_home(config, uid: int = ALICE, name: str = "alice") -> Path:
    """A home as useradd leaves it, owned by the account."""
    home = config.root / "home" / name
    home.mkdir(parents=True)
    os.chown(home, uid, uid)
    return home


def system_tree(base: Path) -> Path:
    """`outside/`: root's folders and files (the node's /etc), and one big file for the disk-use checks."""
    outside = base / "outside"
    (outside / "etc/systemd/system").mkdir(parents=True)
    (outside / "etc/systemd/system/nginx.service").write_text("[Service]\nExecStart=/usr/sbin/nginx\n")
    (outside / "etc/shadow").write_text("root:$6$secret:19000::::::\n")
    (outside / "big.bin").write_bytes(b"x" * 1_000_000)
    return outside


@pytest.fixture
def node(tmp_path):
    """A private root with alice's home and bob's (with a secret), and the system's files beside it."""
    require_binary("nginx")
    config, _ = make_config(tmp_path)
    customer_home(config)
    bob = customer_home(config, BOB, "bob")
    (bob / "wp-config.php").write_text("<?php define('DB_PASSWORD', 'bob-secret');")
    return config, system_tree(tmp_path)


def test_docroot_through_a_planted_link_is_refused_naming_docroot(tmp_path):
    """The report's attack: ~/evil -> /etc/systemd/system and docroot "evil/nginx.service.d" is a 400
    naming docroot; no folder appears outside the home, none is given to alice, no site is made."""
    require_binary("nginx")
    config, _reloads, client = make_app(tmp_path)
    home = customer_home(config)
    outside = system_tree(tmp_path)
    (home / "evil").symlink_to(outside / "etc/systemd/system")
    os.lchown(home / "evil", ALICE, ALICE)
    before = snapshot(outside)
    answer = client.request("POST", "/v1/webdomains",
                            {"name": "evil.example", "owner": "alice", "docroot": "evil/nginx.service.d"})
    assert answer.status_code == 400, answer.json
    assert "docroot" in answer.json["fields"] and "link" in answer.json["fields"]["docroot"]
    assert not (outside / "etc/systemd/system/nginx.service.d").exists()
    assert snapshot(outside) == before
    assert web.list_domains(config) == []
    assert not (config.root / web.VHOST_DIR / "alice").exists()


@pytest.mark.parametrize("swapped", ["site", "nginx.service.d"])
def test_a_component_swapped_for_a_link_between_mkdir_and_chown(node, swapped):
    """The race: right after the agent made a folder of the docroot, alice swaps it for a link to the
    system's folder (the test hook runs at that moment). The agent refuses (docroot), nothing outside
    the home is made or chowned, and the domain is not kept."""
    config, outside = node
    target = outside / "etc/systemd/system"
    before = snapshot(outside, config.root / "home/bob")
    swaps = []

    def swap(parent_fd: int, entry: str) -> None:
        if entry == swapped:
            os.rename(entry, f"{entry}.moved", src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            os.symlink(target, entry, dir_fd=parent_fd)
            swaps.append(entry)

    with failpoints.armed("homefs.after_mkdir", swap), pytest.raises(ValidationError) as refused:
        web.create(config, {"name": "race.example", "owner": "alice", "docroot": "site/nginx.service.d"})
    assert swaps == [swapped]
    assert refused.value.field == "docroot" and "symbolic link" in refused.value.message
    assert snapshot(outside, config.root / "home/bob") == before
    assert not (target / "nginx.service.d").exists() and not (target / "index.html").exists()
    assert web.list_domains(config) == []
    assert not (config.root / web.VHOST_DIR / "alice").exists()


def test_homes_sites_and_pages_are_private_to_their_owner(node):
    """A new site: home alice:www-data 0710 (nginx enters, no other account does), folders
    alice:www-data 2750, the page alice:www-data 0640; the pool's ~/tmp alice:alice 0700."""
    config, _ = node
    new_home = config.root / "home/carol"
    (config.root / "etc/passwd").write_text((config.root / "etc/passwd").read_text()
                                             + "carol:x:1003:1003::/home/carol:/bin/bash\n")
    web.create(config, {"name": "carol.example", "owner": "carol", "php": True})
    shapes = {
        "home": new_home, "www": new_home / "www", "docroot": new_home / "www/carol.example",
        "page": new_home / "www/carol.example/index.html", "tmp": new_home / "tmp",
    }
    seen = {k: (p.lstat().st_uid, p.lstat().st_gid, stat.S_IMODE(p.lstat().st_mode)) for k, p in shapes.items()}
    assert seen == {
        "home": (1003, WWW_DATA, 0o710), "www": (1003, WWW_DATA, 0o2750), "docroot": (1003, WWW_DATA, 0o2750),
        "page": (1003, WWW_DATA, 0o640), "tmp": (1003, 1003, 0o700),
    }


def test_a_new_accounts_home_is_private(tmp_path):
    """useradd leaves Debian's 0755 (every account reads it); the agent makes it <name>:www-data 0710."""
    require_binary("useradd", "groupadd")
    config, _ = make_config(tmp_path)
    users.create(config, {"name": "carol", "uid": 2001, "gid": 2001})
    home = (config.root / "home/carol").lstat()
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (2001, WWW_DATA, 0o710)


def test_an_account_whose_home_path_is_taken_is_refused(node):
    """/home/<name> already there (a link to the system's files, or an old customer's folder): useradd
    would keep it as it is, so the account is refused (409, name) and nothing is touched."""
    require_binary("useradd", "groupadd")
    config, outside = node
    (config.root / "home/carol").symlink_to(outside / "etc")
    before = snapshot(outside)
    with pytest.raises(apply.Conflict) as refused:
        users.create(config, {"name": "carol", "uid": 2001, "gid": 2001})
    assert refused.value.field == "name"
    assert snapshot(outside) == before
    assert "carol" not in (config.root / "etc/passwd").read_text()


def test_sites_only_for_hosting_accounts(node):
    """A site owned by root or www-data would run its PHP as them (www-data enters every home): 400 owner."""
    config, _ = node
    for owner in ("root", "www-data"):
        with pytest.raises(ValidationError) as refused:
            web.create(config, {"name": f"{owner}.example", "owner": owner, "php": True})
        assert refused.value.field == "owner"
    with pytest.raises(ValidationError) as refused:
        web.create(config, {"name": "tmp.example", "owner": "alice", "docroot": "tmp/site"})
    assert refused.value.field == "docroot"
    assert web.list_domains(config) == []


def test_vhost_pool_and_default_server(node):
    """Every vhost has disable_symlinks if_not_owner; the pool is confined to the home with its own tmp
    and starts there; the include's default server answers unknown hosts with 444; nginx -t accepts it."""
    config, _ = node
    web.create(config, {"name": "alice.example", "owner": "alice", "php": True})
    web.create(config, {"name": "static.example", "owner": "alice"})
    home = config.root / "home/alice"
    for name in ("alice.example", "static.example"):
        text = (config.root / web.VHOST_DIR / "alice" / f"{name}.conf").read_text()
        assert "disable_symlinks if_not_owner;" in text
    pool = (config.root / web.POOL_DIR / "hostfleet-alice.conf").read_text()
    assert f"chdir = {home}\n" in pool
    assert f"php_admin_value[open_basedir] = {home}/\n" in pool
    for setting in ("upload_tmp_dir", "sys_temp_dir", "session.save_path"):
        assert f"php_admin_value[{setting}] = {home}/tmp\n" in pool
    include = (config.root / web.INCLUDE).read_text()
    assert "listen 80 default_server;" in include and "listen [::]:80 default_server;" in include
    assert "return 444;" in include
    web.nginx_test(config)


def test_debians_default_site_gives_way_to_the_default_server(node):
    """Debian's stock sites-enabled/default also claims default_server (nginx -t would refuse two): the
    apply replaces it with a note, journaled like the other files; its folder and sites-available stay."""
    config, _ = node
    conf = config.root / web.NGINX_CONF
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(apply.render("nginx.conf.j2", root=config.root).decode().replace(
        'include "' + str(config.root) + '/etc/nginx/conf.d/*.conf";',
        'include "' + str(config.root) + '/etc/nginx/conf.d/*.conf";\n    include "'
        + str(config.root) + '/etc/nginx/sites-enabled/*";'))
    available = config.root / "etc/nginx/sites-available/default"
    available.parent.mkdir(parents=True)
    available.write_text("server {\n    listen 80 default_server;\n    root /var/www/html;\n}\n")
    enabled = config.root / web.DEBIAN_DEFAULT_SITE
    enabled.parent.mkdir(parents=True)
    enabled.symlink_to("../sites-available/default")
    web.create(config, {"name": "alice.example", "owner": "alice"})
    assert not enabled.is_symlink() and enabled.read_bytes() == web.DEFAULT_SITE_NOTE
    assert "listen" in available.read_text()
    web.nginx_test(config)


# Path shapes for the property test: what a customer can put at a component of a path the agent
# walks. Links are absolute, relative with "..", chained, or pointing back into the home; a file may
# be a hard link to a file of the system's.
KINDS = ("missing", "dir", "file", "hard_link", "abs_link", "dotdot_link", "link_chain", "link_home")
TARGETS = ("outside/etc/systemd/system", "outside", "root/home/bob", "outside/etc/shadow")


def plant(base: Path, home: Path, path: Path, kind: str, target: str) -> bool:
    """Put one kind of entry at path as alice could have; False when nothing further can be planted
    below it (only real folders of hers hold more)."""
    aim = base / target
    if kind == "missing":
        return False
    if kind == "dir":
        path.mkdir()
    elif kind == "file":
        path.write_text("alice's file")
    elif kind == "hard_link":
        os.link(base / "outside/etc/shadow", path)
        return False
    elif kind == "abs_link":
        path.symlink_to(aim)
    elif kind == "dotdot_link":
        path.symlink_to(os.path.relpath(aim, path.parent))
    elif kind == "link_chain":
        hop = home / f".hop-{path.name}"
        if not os.path.lexists(hop):
            hop.symlink_to(aim)
            os.lchown(hop, ALICE, ALICE)
        path.symlink_to(hop)
    elif kind == "link_home":
        path.symlink_to(home)
    if kind != "hard_link":
        os.lchown(path, ALICE, ALICE)
    return kind == "dir"


def plant_path(base: Path, home: Path, relative: str, kinds: list[str], target: str) -> None:
    """Plant one kind per component of relative, as deep as real folders allow."""
    path = home
    for part, kind in zip(relative.split("/"), kinds, strict=False):
        path = path / part
        if os.path.lexists(path) or not plant(base, home, path, kind, target):
            return


shapes = st.lists(st.sampled_from(KINDS), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docroot=shapes, tmp=shapes, maildir=shapes, extra=st.sampled_from(KINDS), home_link=st.booleans(),
       target=st.sampled_from(TARGETS), php=st.booleans())
def test_no_op_touches_anything_outside_the_home(docroot, tmp, maildir, extra, home_link, target, php):
    """For any shape alice gives her tree (links at every depth: absolute, with "..", chained, back into
    the home; files; hard links to the system's files; the home itself a link), every op that walks it
    — making a site's document root and page, the pool's ~/tmp, giving an older agent's site today's
    modes, measuring disk use, removing a
    mailbox's and a mail domain's folders, purging and deleting the account with its home — leaves
    bob's home and the system's files exactly as they were, and gives nothing outside to alice."""
    require_binary("nginx", "userdel", "groupdel")
    # Under /tmp itself: a PHP pool's socket path must stay within the 108 bytes of a Unix socket's name,
    # which pytest's numbered folders can pass.
    with tempfile.TemporaryDirectory(prefix="hf-") as scratch:
        base = Path(scratch)
        config, _ = make_config(base)
        outside = system_tree(base)
        bob = customer_home(config, BOB, "bob")
        (bob / "wp-config.php").write_text("<?php define('DB_PASSWORD', 'bob-secret');")
        if home_link:
            (config.root / "home/alice").symlink_to(outside)
        else:
            home = customer_home(config)
            plant_path(base, home, "site/www/public", docroot, target)
            plant_path(base, home, "tmp/x", tmp, target)
            plant(base, home, home / "extra", extra, target)
        mail_dir = config.root / mail.MAIL_DIR
        mail_dir.mkdir(parents=True)
        plant_path(base, mail_dir, "alice.example/info/cur", maildir, target)
        sentinel = [outside, bob]
        before = snapshot(*sentinel)

        try:
            made = web.create(config, {"name": "alice.example", "owner": "alice", "docroot": "site/www/public",
                                       "php": php})
        except ValidationError as exc:
            assert exc.field == "docroot", exc
            made = None
        if made is not None:
            docroot = config.root / "home/alice/site/www/public"
            assert not home_link and docroot.is_dir() and not docroot.is_symlink()
            assert os.path.realpath(docroot).startswith(str(config.root / "home/alice") + "/")
        else:
            # Measured for an owner with a site here; the record alone is enough for that.
            apply.save_records(config, web.KIND, [{"name": "alice.example", "owner": "alice"}])
        try:
            homefs.make_site_private(config, "alice", "site/www/public")
        except ValidationError as exc:
            assert exc.field == "docroot", exc
        assert usage.measure(config)["alice"] < 1_000_000, "the system's big file was counted"
        if made is None:
            apply.save_records(config, web.KIND, [])
        mail._remove_mail(config, "alice.example", "info")
        mail._remove_mail(config, "alice.example")
        users.purge(config, "alice")
        users.delete(config, "alice")
        assert snapshot(*sentinel) == before
        for dirpath, dirs, files in os.walk(base / "outside"):
            for name in [*dirs, *files]:
                assert os.lstat(os.path.join(dirpath, name)).st_uid != ALICE, name
