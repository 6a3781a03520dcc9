"""Web domains: nginx -t accepts the rendered tree, rollback on refusal, idempotence, CRUD."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agent.ops import apply, web
from agent.tests.ops_helpers import config_digest, make_config, require_binary
from agent.validation import ValidationError

CASES = {
    "plain": {"name": "example.com", "owner": "alice"},
    "php": {"name": "shop.example.net", "owner": "bob", "php": True},
    "aliases": {"name": "example.org", "owner": "alice", "aliases": ["www.example.org", "m.example.org"]},
    "idn": {"name": "пример.рф", "owner": "alice", "aliases": ["www.пример.рф"]},
    "docroot": {"name": "example.info", "owner": "bob", "docroot": "sites/info/public"},
}


@pytest.fixture
def agent(tmp_path):
    """A config under a private root; nginx must be installed."""
    require_binary("nginx")
    return make_config(tmp_path)


def vhost(config, owner: str, name: str):
    """The path of a domain's server block."""
    return config.root / web.VHOST_DIR / owner / f"{name}.conf"


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_rendered_vhost_passes_nginx_t(agent, case):
    """Each shape of web domain renders into a tree that nginx -t accepts; one reload."""
    config, reloads = agent
    domain = web.create(config, CASES[case])
    assert vhost(config, domain["owner"], domain["name"]).exists()
    web.nginx_test(config)
    assert reloads.calls()[-1] == "nginx"
    assert ("php-fpm" in reloads.calls()) == bool(CASES[case].get("php"))
    assert web.get(config, domain["name"]) == domain


def long_name(length: int) -> str:
    """A valid domain name of exactly length characters (labels of at most 63)."""
    labels, left = [], length - len(".example")
    while left > 0:
        take = min(63, left - 1 if left > 63 else left)
        if left - take == 1:
            take -= 1
        labels.append("a" * take)
        left -= take + 1
    name = ".".join(labels) + ".example"
    assert len(name) == length and max(map(len, name.split("."))) <= 63
    return name


@pytest.mark.parametrize("length", [64, 129, 200, 253])
def test_any_valid_name_gets_a_site_with_the_default_document_root(agent, length):
    """Names past 128 characters were refused their default document root (www/<name>: a path component was
    at most 128 characters, the path 255), and past about 50 nginx -t refused them (its server-name hash
    bucket, 64 bytes by default). Past 240 the vhost and log file names, which add a suffix, would be longer
    than a file name may be: they are cut and carry a digest. PHP's socket is named by the owner, never the
    domain, so it stays within a Unix socket's 108 bytes."""
    config, _ = agent
    name = long_name(length)
    domain = web.create(config, {"name": name, "owner": "alice", "php": True, "aliases": ["www." + name[4:]]})
    assert domain["docroot"] == f"www/{name}"
    assert (config.root / "home/alice" / domain["docroot"] / "index.html").exists()
    stem = web.file_stem(name)
    assert len(stem) <= web.STEM_MAX and (stem == name) == (length <= web.STEM_MAX)
    text = vhost(config, "alice", stem).read_text()
    assert f"server_name {name} www.{name[4:]};" in text
    logs = {p.name for p in (config.root / web.LOG_DIR).glob("*.log")}
    assert {f"{stem}.access.log", f"{stem}.error.log"} <= logs
    web.nginx_test(config)
    on_a_node = dataclasses.replace(config, root=Path("/"))
    assert len(str(web.php_socket(on_a_node, "a" * 32))) < 108


def test_a_hash_size_nginx_conf_sets_is_not_set_twice(agent):
    """An administrator's own server_names_hash_bucket_size in nginx.conf (Debian ships it commented out) is
    kept, and the include does not repeat it: nginx refuses a directive given twice."""
    config, _ = agent
    conf = config.root / web.NGINX_CONF
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(apply.render("nginx.conf.j2", root=config.root).decode().replace(
        "http {\n", "http {\n    server_names_hash_bucket_size 128;\n"))
    web.create(config, CASES["plain"])
    include = (config.root / web.INCLUDE).read_text()
    assert "server_names_hash_bucket_size" not in include and "server_names_hash_max_size 16384;" in include


def test_idn_is_stored_as_punycode(agent):
    """Unicode names reach nginx only in their ASCII form."""
    config, _ = agent
    domain = web.create(config, CASES["idn"])
    assert domain["name"] == "xn--e1afmkfd.xn--p1ai"
    assert "server_name xn--e1afmkfd.xn--p1ai www.xn--e1afmkfd.xn--p1ai;" in vhost(
        config, "alice", domain["name"]).read_text()


def test_same_request_twice_changes_nothing(agent):
    """Replacing the set with itself writes nothing and reloads nothing."""
    config, reloads = agent
    rows = list(CASES.values())
    web.replace_all(config, rows)
    calls = reloads.calls()
    before = config_digest(config)
    assert web.replace_all(config, rows).changed is False
    assert config_digest(config) == before
    assert reloads.calls() == calls


def test_checker_refusal_returns_message_and_restores(agent, monkeypatch):
    """A broken rendering is refused with nginx's own message; the previous tree is back."""
    config, reloads = agent
    web.create(config, CASES["plain"])
    before = config_digest(config)
    calls = reloads.calls()
    real = web.render_files

    def broken(config, domains, *args):
        files = real(config, domains, *args)
        path = vhost(config, "bob", "shop.example.net")
        files[path] = files[path].replace(b"index index", b"bogus_directive on;\n    index index")
        return files

    monkeypatch.setattr(web, "render_files", broken)
    with pytest.raises(apply.CheckFailed) as caught:
        web.create(config, CASES["php"])
    assert 'unknown directive "bogus_directive"' in caught.value.message
    assert not vhost(config, "bob", "shop.example.net").exists()
    assert not (config.root / web.VHOST_DIR / "bob").exists()
    assert {k: h for k, h in config_digest(config).items() if "/var/log/" not in k} == {
        k: h for k, h in before.items() if "/var/log/" not in k}
    assert reloads.calls() == calls
    assert [d["name"] for d in web.list_domains(config)] == ["example.com"]


def test_reload_failure_restores_and_reloads_again(agent):
    """A failed reload puts the previous files back and reloads them."""
    config, reloads = agent
    web.create(config, CASES["plain"])
    path = vhost(config, "alice", "example.com")
    previous = path.read_bytes()
    reloads.fail()
    with pytest.raises(apply.ReloadFailed, match="reload of nginx failed"):
        web.update(config, "example.com", {"aliases": ["www.example.com"]})
    assert path.read_bytes() == previous
    assert reloads.calls() == ["nginx", "nginx", "nginx"]
    assert web.get(config, "example.com")["aliases"] == []


def test_update_and_delete(agent):
    """Update rewrites one file; delete removes it and the empty owner folder. The owner's pool stays (no
    php-fpm reload for everyone when one customer's PHP goes off and on) until their data is purged."""
    config, reloads = agent
    web.create(config, CASES["php"])
    pool = config.root / web.POOL_DIR / "hostfleet-bob.conf"
    web.update(config, "shop.example.net", {"php": False})
    assert "fastcgi_pass" not in vhost(config, "bob", "shop.example.net").read_text()
    web.delete(config, "shop.example.net")
    assert not (config.root / web.VHOST_DIR / "bob").exists()
    with pytest.raises(apply.NotFound):
        web.get(config, "shop.example.net")
    assert pool.exists() and reloads.calls().count("php-fpm") == 1
    assert web.purge_owner(config, "bob") == []
    assert not pool.exists() and reloads.calls().count("php-fpm") == 2


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "example.com", "owner": "mallory"}, "owner"),
        ({"name": "example.com", "owner": "alice", "docroot": "../../etc"}, "docroot"),
        ({"name": "example.com", "owner": "alice", "docroot": "/etc"}, "docroot"),
        ({"name": "example.com;", "owner": "alice"}, "name"),
        ({"name": "example.com", "owner": "alice", "aliases": "www.example.com"}, "aliases"),
        ({"name": "example.com", "owner": "alice", "php": "yes"}, "php"),
        ({"name": "example.com", "owner": "alice", "color": "red"}, "color"),
    ],
)
def test_bad_values_refused_before_any_write(agent, data, field):
    """Bad input names the field and leaves the tree untouched."""
    config, reloads = agent
    before = config_digest(config)
    with pytest.raises(ValidationError) as caught:
        web.create(config, data)
    assert caught.value.field == field
    assert config_digest(config) == before
    assert reloads.calls() == []


def test_alias_served_twice_is_a_conflict(agent):
    """Two domains cannot claim the same host name."""
    config, _ = agent
    web.create(config, CASES["aliases"])
    with pytest.raises(apply.Conflict):
        web.create(config, {"name": "www.example.org", "owner": "bob"})


@pytest.mark.parametrize(("given", "kept"), [
    ({}, {}),
    ({"memory_limit": "256m", "upload_max_filesize": 64, "post_max_size": "1G"},
     {"memory_limit": "256M", "upload_max_filesize": "64M", "post_max_size": "1024M"}),
    ({"max_execution_time": 120, "display_errors": False, "memory_limit": ""},
     {"max_execution_time": 120, "display_errors": "off"}),
    ({"upload_max_filesize": "8MB"}, {"upload_max_filesize": "8M"}),
    ({"memory_limit": "1024M", "max_execution_time": 60, "display_errors": "on"},
     {"memory_limit": "1024M", "max_execution_time": 60, "display_errors": "on"}),
])
def test_php_settings_are_kept_normalized(given, kept):
    """Sizes become "<n>M" whatever unit they were typed in, the switch "on"/"off"; empty means unset; what is
    kept passes again unchanged (the master checks first, the node once more)."""
    assert web.php_settings(given) == kept


@pytest.mark.parametrize(("given", "field"), [
    ({"memory_limit": "-1"}, "php_settings.memory_limit"),
    ({"memory_limit": "8M"}, "php_settings.memory_limit"),
    ({"memory_limit": "5G"}, "php_settings.memory_limit"),
    ({"memory_limit": "256M\nphp_admin_value[open_basedir] = /"}, "php_settings.memory_limit"),
    ({"memory_limit": True}, "php_settings.memory_limit"),
    ({"post_max_size": "64K"}, "php_settings.post_max_size"),
    ({"max_execution_time": 0}, "php_settings.max_execution_time"),
    ({"max_execution_time": "30; x"}, "php_settings.max_execution_time"),
    ({"display_errors": "yes"}, "php_settings.display_errors"),
    ({"open_basedir": "/"}, "php_settings.open_basedir"),
    ({"upload_max_filesize": "64M"}, "php_settings.upload_max_filesize"),
    ({"upload_max_filesize": "64M", "post_max_size": "32M"}, "php_settings.post_max_size"),
    ("memory_limit=1G", "php_settings"),
])
def test_bad_php_settings_name_the_setting(given, field):
    """Out of range, another unit, a line break that would add a directive, an unknown setting (open_basedir
    is the panel's), an upload larger than the form that carries it: refused naming the setting."""
    with pytest.raises(ValidationError) as refused:
        web.php_settings(given)
    assert refused.value.field == field


def test_site_pool(agent):
    """A site with PHP settings runs in a pool of its own (a short name: the socket's path, under the test's
    folder, must stay within 108 bytes). The site's vhost passes PHP to its own pool, which holds the
    settings as admin values next to the owner's confinement; the owner's other PHP site stays in the
    owner's pool; clearing the settings removes the site's pool and php-fpm is reloaded for each change."""
    config, reloads = agent
    web.create(config, {"name": "plain.example", "owner": "alice", "php": True})
    tuned = web.create(config, {"name": "shop.example", "owner": "alice", "php": True,
                                "php_settings": {"memory_limit": "256M", "display_errors": True}})
    assert tuned["php_settings"] == {"memory_limit": "256M", "display_errors": "on"}
    pool = web.pool_name("alice", "shop.example")
    pool_file = config.root / web.POOL_DIR / f"{web.POOL_PREFIX}{pool}.conf"
    text = pool_file.read_text()
    assert f"[hostfleet-{pool}]" in text and "user = alice" in text
    assert "php_admin_value[memory_limit] = 256M" in text and "php_admin_flag[display_errors] = on" in text
    assert f"php_admin_value[open_basedir] = {config.root}/home/alice/" in text
    assert str(web.php_socket(config, pool)) in vhost(config, "alice", "shop.example").read_text()
    assert str(web.php_socket(config, "alice")) in vhost(config, "alice", "plain.example").read_text()
    assert (config.root / web.POOL_DIR / "hostfleet-alice.conf").exists()
    web.nginx_test(config)
    reloads_before = reloads.calls().count("php-fpm")
    assert web.update(config, "shop.example", {"php_settings": {}})["php_settings"] == {}
    assert not pool_file.exists() and reloads.calls().count("php-fpm") == reloads_before + 1
    assert str(web.php_socket(config, "alice")) in vhost(config, "alice", "shop.example").read_text()
    assert web.kept_pools(config) == {"alice"}


def test_the_pool_with_settings_passes_php_fpm_t(tmp_path):
    """php-fpm's own check accepts a site's pool with every setting (rendered for an account the host has)."""
    require_binary("php-fpm8.2")
    settings = web.php_settings({"memory_limit": "1G", "upload_max_filesize": "100M", "post_max_size": "101M",
                                 "max_execution_time": 300, "display_errors": False})
    pool = apply.render("php-pool.conf.j2", pool=web.pool_name("www-data", "a.example"), owner="www-data",
                        socket=tmp_path / "php.sock", home=tmp_path, tmp=tmp_path / "tmp", settings=settings)
    (tmp_path / "pool.conf").write_bytes(pool)
    (tmp_path / "fpm.conf").write_text(f"[global]\npid = {tmp_path}/fpm.pid\nerror_log = {tmp_path}/fpm.log\n"
                                       f"include = {tmp_path}/pool.conf\n")
    apply.run_checker("php-fpm", ["php-fpm8.2", "-t", "-y", str(tmp_path / "fpm.conf")])
    (tmp_path / "pool.conf").write_bytes(pool.replace(b"php_admin_flag[display_errors] = off",
                                                      b"php_admin_flag[display_errors = off"))
    with pytest.raises(apply.CheckFailed):
        apply.run_checker("php-fpm", ["php-fpm8.2", "-t", "-y", str(tmp_path / "fpm.conf")])
