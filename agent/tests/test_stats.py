"""GET /v1/stats shape, and the role package check behind it."""

import pytest

from agent import API_VERSION, __version__, liststate
from agent.stats import ROLE_PACKAGES, RoleChecker, disk_usage, memory_usage, parse_dpkg_status


def test_stats_has_the_documented_shape(client, agent):
    """Every documented key is present with the documented types."""
    stats = client.stats()
    assert set(stats) == {
        "api_version",
        "agent_version",
        "uptime_s",
        "load",
        "memory",
        "disk",
        "roles",
        "software",
        "usage",
        "lists",
    }
    assert stats["api_version"] == API_VERSION and stats["agent_version"] == __version__
    assert isinstance(stats["uptime_s"], int) and stats["uptime_s"] >= 0
    assert len(stats["load"]) == 3 and all(isinstance(x, (int, float)) for x in stats["load"])
    assert set(stats["memory"]) == {"total", "available", "used_percent"}
    assert stats["memory"]["total"] >= stats["memory"]["available"] > 0
    assert set(stats["disk"]) == {"path", "total", "free", "used_percent"}
    assert stats["disk"]["path"] == str(agent.root)
    assert 0 <= stats["disk"]["used_percent"] <= 100
    assert stats["software"] == {"state": "idle"}
    assert set(stats["usage"]) == {"measured_at", "owners"} and isinstance(stats["usage"]["owners"], dict)


def test_stats_reports_configured_roles_only(client):
    """Roles are the node's configured ones, each with installed and missing packages."""
    roles = client.stats()["roles"]
    assert set(roles) == {"web", "dns"}
    for role, report in roles.items():
        assert set(report) == {"installed", "missing"}
        assert set(report["missing"]) <= set(ROLE_PACKAGES[role])
        assert report["installed"] == (report["missing"] == [])


def test_stats_reports_list_versions(app, signed_client):
    """Lists recorded in the state dir appear with their version and hash."""
    assert signed_client.get("/v1/stats").json["lists"] == {}
    content_hash = liststate.list_hash([{"name": "probe"}])
    liststate.record(app.config["AGENT_CONFIG"].state_dir, "probe", 7, content_hash)
    response = signed_client.get("/v1/stats")
    assert response.status_code == 200
    assert response.json["lists"] == {"probe": {"version": 7, "hash": content_hash}}


@pytest.mark.parametrize(
    ("output", "installed"),
    [
        ("", set()),
        ("nginx\tinstall ok installed\n", {"nginx"}),
        ("nginx\tinstall ok installed\nphp-fpm\tdeinstall ok config-files\n", {"nginx"}),
        ("bind9\tinstall ok half-installed\nbind9-utils\tinstall ok unpacked\n", set()),
        ("bind9\thold ok installed\n", {"bind9"}),
        ("garbage line without a tab\n", set()),
    ],
)
def test_parse_dpkg_status(output, installed):
    """Only packages whose status ends in "installed" count."""
    assert parse_dpkg_status(output) == installed


class FakeDpkg:
    """Stands in for dpkg-query: a fixed installed set, counting calls."""

    def __init__(self, installed):
        self.installed = set(installed)
        self.calls = 0

    def __call__(self, packages):
        self.calls += 1
        return self.installed & set(packages)


@pytest.mark.parametrize(
    ("roles", "installed", "expected"),
    [
        (["web"], {"nginx", "php-fpm"}, {"web": {"installed": True, "missing": []}}),
        (["web"], {"nginx"}, {"web": {"installed": False, "missing": ["php-fpm"]}}),
        (
            ["dns", "mail"],
            {"bind9", "bind9-utils", "dovecot-imapd"},
            {
                "dns": {"installed": True, "missing": []},
                "mail": {"installed": False, "missing": ["exim4-daemon-heavy"]},
            },
        ),
        (["db"], set(), {"db": {"installed": False, "missing": ["mariadb-server"]}}),
        ([], {"nginx"}, {}),
    ],
)
def test_role_checker(roles, installed, expected):
    """A role is installed when none of its packages is missing."""
    assert RoleChecker(FakeDpkg(installed)).roles(roles) == expected


def test_role_checker_caches_dpkg():
    """dpkg is asked once per cache period, and again once it expires."""
    fake = FakeDpkg({"nginx"})
    checker = RoleChecker(fake, ttl_s=60)
    for _ in range(5):
        checker.roles(["web"])
    assert fake.calls == 1
    uncached = RoleChecker(fake, ttl_s=0)
    uncached.roles(["web"])
    uncached.roles(["web"])
    assert fake.calls == 3


def test_memory_usage_reads_meminfo(tmp_path):
    """Total and available come from MemTotal and MemAvailable, in bytes."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        4000 kB\nMemFree:          500 kB\nMemAvailable:     1000 kB\n")
    assert memory_usage(str(meminfo)) == {"total": 4096000, "available": 1024000, "used_percent": 75.0}


def test_disk_usage_of_root(tmp_path):
    """Disk figures describe the filesystem holding the given path."""
    usage = disk_usage(str(tmp_path))
    assert usage["path"] == str(tmp_path)
    assert usage["total"] >= usage["free"] >= 0
    assert 0 <= usage["used_percent"] <= 100
