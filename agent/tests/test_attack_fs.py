"""A hostile customer against tenant isolation (docs/security.md): alice has a shell as her own UID
(her PHP gives her one) and shapes her home to break what the agent, running as root, does with it.

Each test plays alice for real: a forked child drops to her UID/GID and works in her home through a
handle the parent opened, the agent's op then runs as root over the private root.
"""

from __future__ import annotations

import os
import stat
import subprocess
import traceback
from pathlib import Path

import pytest

from agent import homefs, usage
from agent.ops import apply, users, web
from agent.tests.ops_helpers import make_config, require_binary

ALICE = 1001

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="plays the customer with setuid: needs root")


def as_customer(home: Path, action, uid: int = ALICE) -> None:
    """Run action(home_fd) in a child that dropped to uid (no supplementary groups); the home is handed
    over as an open handle, so the test's private tmp folder need not be searchable by the customer."""
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                action(fd)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, "the customer's own actions failed"


def deep_tree(depth: int, payload: int = 0):
    """alice's action: a chain of `depth` folders below her home, a payload-byte file at the bottom."""

    def action(home_fd: int) -> None:
        fd = os.dup(home_fd)
        for _ in range(depth):
            os.mkdir("d", 0o700, dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
        if payload:
            out = os.open("hidden.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=fd)
            os.write(out, b"x" * payload)
            os.close(out)
        os.close(fd)

    return action


def customer_home(config, uid: int = ALICE, name: str = "alice") -> Path:
    home = config.root / "home" / name
    home.mkdir(parents=True)
    os.chown(home, uid, uid)
    return home


def test_files_below_the_walk_depth_limit_are_charged(tmp_path):
    """Quota evasion: tree_bytes stops descending at MAX_DEPTH (256) levels, so alice keeps any amount of
    data in a folder 300 levels down and her disk use shows only the folders above it; the master's
    quota check (refusing new sites and mailboxes over disk_mb) never sees it."""
    config, _ = make_config(tmp_path)
    home = customer_home(config)
    as_customer(home, deep_tree(300, payload=5_000_000))
    apply.save_records(config, web.KIND, [{"name": "alice.example", "owner": "alice", "aliases": [],
                                           "php": False, "docroot": "www/alice.example"}])
    assert usage.measure(config)["alice"] >= 5_000_000


def test_a_very_deep_home_is_removed_with_its_account(tmp_path):
    """Deleting an account whose home is deeper than Python's recursion limit: shutil.rmtree (recursive on
    3.11) raises RecursionError, which _remove_home does not catch. The agent answers 500 after userdel
    ran: the account is gone (a retry is 404) but its home, owned by a UID no account has, and its group
    stay; the name can never be given again (409: /home/<name> exists), and the files are charged to
    no one."""
    require_binary("useradd", "userdel", "groupadd", "groupdel")
    config, _ = make_config(tmp_path)
    users.create(config, {"name": "carol", "uid": 2001, "gid": 2001})
    home = config.root / "home/carol"
    as_customer(home, deep_tree(1500, payload=1000), uid=2001)
    try:
        users.delete(config, "carol")
        left = os.path.lexists(home)
    finally:
        # pytest's own clean-up of old temporary folders is shutil.rmtree too: never leave the tree behind.
        subprocess.run(["rm", "-rf", "--", str(home)], check=False)
    assert not left
    assert "carol:" not in (config.root / "etc/group").read_text()


def test_a_folder_moved_during_a_deep_walk_hides_nothing_else(tmp_path):
    """The deep walk keeps handles of the deepest levels only and climbs back through "..", checking it
    reaches the folder it left. alice moving a folder far above the open levels out of its parent while
    the walk is below it (here: at level 150, level 50 goes to the top) makes ".." lead elsewhere; the
    walk must reach the parent again by name, not give up every folder still to visit above it (the
    `side` folders of levels 1-49 and their files)."""
    top = tmp_path / "home"
    path = top
    for _ in range(160):
        (path / "side").mkdir(parents=True)
        (path / "side/data.bin").write_bytes(b"x" * 50_000)
        path = path / "d"
    path.mkdir()
    moved = []

    def visit(fd: int) -> list[str]:
        nonlocal total
        folders = []
        with os.scandir(fd) as entries:
            for entry in entries:
                total += entry.stat(follow_symlinks=False).st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
        if len(folders) == 2 and not moved and os.fstat(fd).st_ino == os.stat(top / ("d/" * 150)).st_ino:
            os.rename(top / ("d/" * 50), top / "moved")
            moved.append(True)
        return sorted(folders)  # "d" before "side": the side folders are still to visit on the way back

    total = 0
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        homefs._descend(fd, visit)
    finally:
        os.close(fd)
    assert moved
    du = subprocess.run(["du", "-s", "-B1", "-l", str(top)], capture_output=True, text=True, check=True)
    assert total == int(du.stdout.split()[0]) - top.stat().st_blocks * 512


def test_a_home_made_before_the_fix_becomes_private(tmp_path):
    """Upgrade: homes made before homes were private are Debian's 0755 (alice:alice), their sites 0755 and
    files 0644. Nothing the agent does makes them private: Home(create=True) sets the mode only of a home
    it makes, walk only of folders it makes. After alice's next site (with PHP: its pool's ~/tmp is
    ensured on every web apply too), bob's PHP still reads her wp-config.php — the isolation stays
    open for every customer a node already had. A home the agent works in gets the private shape."""
    require_binary("nginx")
    config, _ = make_config(tmp_path)
    home = customer_home(config)
    os.chmod(home, 0o755)
    old_site = home / "www/old.example"
    old_site.mkdir(parents=True, mode=0o755)
    (old_site / "wp-config.php").write_text("<?php define('DB_PASSWORD', 'alice-secret');")
    for path in (home / "www", old_site, old_site / "wp-config.php"):
        os.chown(path, ALICE, ALICE)
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    web.create(config, {"name": "new.example", "owner": "alice", "php": True})

    def bob_reads(homes_fd: int) -> None:
        try:
            fd = os.open("alice/www/old.example/wp-config.php", os.O_RDONLY, dir_fd=homes_fd)
        except PermissionError:
            return
        os.close(fd)
        raise AssertionError("bob read alice's wp-config.php")

    as_customer(config.root / "home", bob_reads, uid=1002)


def test_homes_made_before_the_fix_are_made_private_at_the_agents_start(tmp_path):
    """Customers who add nothing after the upgrade: the agent's start closes every hosting account's home
    that others can enter; a home its owner already closed to others is left as it is."""
    config, _ = make_config(tmp_path)
    alice = customer_home(config)
    os.chmod(alice, 0o755)
    bob = customer_home(config, 1002, "bob")
    os.chmod(bob, 0o700)
    assert homefs.make_homes_private(config) == ["/home/alice"]
    shapes = {p.name: (p.stat().st_uid, p.stat().st_gid, stat.S_IMODE(p.stat().st_mode)) for p in (alice, bob)}
    assert shapes == {"alice": (ALICE, 33, 0o710), "bob": (1002, 1002, 0o700)}


def test_sites_made_by_an_older_agent_get_the_private_modes_at_the_agents_start(tmp_path):
    """Upgrade: an older agent made document roots `alice:alice 0755` and their index page 0644; today's are
    `alice:www-data 2750` and 0640. The agent's start gives what still has the old shape the new one, walking
    from the home without following links: a document root that is a link to a folder of alice's outside
    the home, and an index page hard-linked to a file outside, are left as they are, and so is anything
    alice shaped herself (her own files, a folder she closed)."""
    require_binary("nginx")
    from agent.server import converge

    config, _ = make_config(tmp_path)
    home = customer_home(config)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "index.html").write_text("outside")
    for name in ("www/old.example", "www/closed.example", "www/hard.example"):
        (home / name).mkdir(parents=True)
    (home / "www/old.example/index.html").write_text("old page")
    (home / "www/old.example/wp-config.php").write_text("<?php")
    (home / "www/closed.example/index.html").write_text("closed")
    os.link(outside / "index.html", home / "www/hard.example/index.html")
    (home / "www/linked.example").symlink_to(outside)
    for path in (home, home / "www", outside, *outside.iterdir(), *home.glob("www/*"), *home.glob("www/*/*")):
        os.chown(path, ALICE, ALICE, follow_symlinks=False)
        if not path.is_symlink():
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(home / "www/closed.example", 0o750)
    os.chmod(home / "www/closed.example/index.html", 0o600)
    apply.save_records(config, web.KIND, [
        {"name": f"{site}.example", "owner": "alice", "aliases": [], "php": False, "docroot": f"www/{site}.example"}
        for site in ("old", "closed", "hard", "linked")])

    def shapes() -> dict[str, tuple[int, int, int]]:
        found = {}
        for path in (home / "www", *home.glob("www/*"), *home.glob("www/*/*"), outside, *outside.iterdir()):
            st = path.lstat()
            found[str(path.relative_to(tmp_path))] = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
        return found

    before = shapes()
    converge(config)
    after = shapes()
    changed = {path: shape for path, shape in after.items() if before[path] != shape}
    site = "root/home/alice/www"
    assert changed == {site: (ALICE, 33, 0o2750), f"{site}/old.example": (ALICE, 33, 0o2750),
                       f"{site}/old.example/index.html": (ALICE, 33, 0o640),
                       f"{site}/hard.example": (ALICE, 33, 0o2750)}
    converge(config)
    assert shapes() == after


def test_the_agents_start_renders_old_vhosts_again(tmp_path):
    """After the agent is updated, the vhosts and pools on disk are still the old templates' (no
    disable_symlinks: nginx follows alice's link to bob's wp-config.php, now that bob's home lets nginx in;
    pools without open_basedir) until some customer changes a site on that node. The agent's start renders
    them again from the stored records."""
    require_binary("nginx")
    from agent.server import converge

    config, _ = make_config(tmp_path)
    customer_home(config)
    web.create(config, {"name": "alice.example", "owner": "alice", "php": True})
    vhost = config.root / web.VHOST_DIR / "alice/alice.example.conf"
    pool = config.root / web.POOL_DIR / "hostfleet-alice.conf"
    fresh = {vhost: vhost.read_bytes(), pool: pool.read_bytes()}
    vhost.write_bytes(fresh[vhost].replace(b"    disable_symlinks if_not_owner;\n", b""))
    pool.write_text("".join(line for line in fresh[pool].decode().splitlines(keepends=True)
                            if "open_basedir" not in line and not line.startswith("chdir")))
    converge(config)
    assert {vhost: vhost.read_bytes(), pool: pool.read_bytes()} == fresh
    converge(config)  # nothing differs now: nothing is written
    assert {vhost: vhost.read_bytes(), pool: pool.read_bytes()} == fresh


def test_one_customer_toggling_php_does_not_reload_everyones_pools(tmp_path):
    """alice turns PHP off and on for her site in a loop (a PUT each, no rate limit on the master). Her
    pool appears and disappears, and each time the agent reloads php-fpm: one master for every customer's
    pool (`systemctl reload-or-restart php8.2-fpm`, SIGUSR2; with Debian's process_control_timeout = 0 the
    workers busy with a request are killed), so bob's PHP requests fail with 502 as often as alice likes.
    A pool could stay while its owner has any site (an idle ondemand pool costs no process), or reloads
    could be rate-limited per owner."""
    require_binary("nginx")
    config, reloads = make_config(tmp_path)
    customer_home(config)
    customer_home(config, 1002, "bob")
    web.create(config, {"name": "bob.example", "owner": "bob", "php": True})
    web.create(config, {"name": "alice.example", "owner": "alice", "php": True})
    before = reloads.calls().count("php-fpm")
    for _ in range(5):
        web.update(config, "alice.example", {"php": False})
        web.update(config, "alice.example", {"php": True})
    assert reloads.calls().count("php-fpm") - before <= 1


def test_another_customers_site_logs_are_not_readable(tmp_path):
    """nginx creates each site's access and error log itself, as root with mode 0644, in Debian's
    /var/log/nginx (root:adm 0755): bob's shell reads alice's visitors' addresses and full URLs (tokens in
    query strings, password-reset links) and her PHP's error messages, until logrotate's first `create
    0640` a day later (and the rotated `.1` keeps 0644 for two weeks). The agent makes them 0640 first."""
    require_binary("nginx")
    config, _ = make_config(tmp_path)
    customer_home(config)
    web.create(config, {"name": "alice.example", "owner": "alice"})
    logs = config.root / web.LOG_DIR
    shown = {p.name: stat.S_IMODE(p.stat().st_mode) & 0o007 for p in logs.glob("alice.example.*.log")}
    assert shown == {"alice.example.access.log": 0, "alice.example.error.log": 0}
