"""Mail: exim -bV and doveconf -n accept the rendered configs; hashes only; sender lists."""

from __future__ import annotations

import subprocess
import time
import warnings

import pytest

from agent.ops import apply, mail
from agent.tests.ops_helpers import config_digest, envelope, make_config, require_binary
from agent.validation import ValidationError

SECRET = "s3cret; rm -rf / \"quoted\""


@pytest.fixture
def agent(tmp_path):
    """A config with one mail domain; exim and doveconf must be installed."""
    require_binary("exim", "doveconf")
    config, reloads = make_config(tmp_path)
    mail.create_domain(config, {"name": "example.com", "owner": "alice"})
    return config, reloads


def test_domain_renders_configs_both_checkers_accept(agent):
    """A new mail domain lands in exim's domain list; both checkers pass; exim reloaded."""
    config, reloads = agent
    assert (config.root / mail.EXIM_DIR / "domains").read_text() == "example.com\n"
    mail.check(config)
    assert reloads.calls() == ["exim", "dovecot"]


def test_exim_checks_never_wait_on_a_host_name_lookup(agent):
    """exim's config names the host, so the `exim -bV` run on every mail change does not look its name
    up: left to exim, about one check in 70 waited out a 5 s resolver timeout on this machine (DNS for the
    host name's IPv6 address), and the change answered past the master's timeout."""
    config, _ = agent
    shown = subprocess.run(["exim", "-bP", "-C", str(config.root / mail.EXIM_CONF), "primary_hostname"],
                           capture_output=True, text=True, check=True).stdout
    assert shown.strip() == f"primary_hostname = {mail.host_name()}"
    slowest = 0.0
    for _ in range(150):
        start = time.monotonic()
        mail.check(config)
        slowest = max(slowest, time.monotonic() - start)
        assert slowest < 2, f"a check took {slowest:.1f} s: exim waited on a host name lookup"
    print(f"\n150 checks, the slowest {slowest * 1000:.0f} ms")


def test_a_deleted_mailboxs_mail_goes_with_it(agent):
    """Deleting a mailbox deletes its mail, and deleting an owner's mail domains deletes theirs: a mailbox
    made later at the same address (another customer's, say) starts empty."""
    config, _ = agent
    mail.create_mailbox(config, {"address": "a@example.com", "password": "long enough pw"})
    mail.create_mailbox(config, {"address": "b@example.com", "password": "long enough pw"})
    folder = config.root / mail.MAIL_DIR / "example.com"
    for local in ("a", "b"):
        (folder / local / "cur").mkdir(parents=True)
        (folder / local / "cur" / "1.eml").write_text("Subject: private\n\nold mail\n")
    mail.delete_mailbox(config, "a@example.com")
    assert not (folder / "a").exists() and (folder / "b" / "cur" / "1.eml").exists()
    mail.create_mailbox(config, {"address": "a@example.com", "password": "another long pw"})
    assert not (folder / "a").exists()
    assert mail.purge_owner(config, "alice") == (["b@example.com", "a@example.com"], ["example.com"])
    assert not folder.exists()


def test_imap_logins_need_tls_with_a_certificate_made_once(agent):
    """dovecot requires TLS for every login: a self-signed certificate (openssl) under the node's
    config, its key readable by root only, kept across later changes; doveconf accepts the result."""
    config, reloads = agent
    names = ["ssl", "disable_plaintext_auth", "ssl_min_protocol"]
    settings = subprocess.run(["doveconf", "-c", str(config.root / mail.DOVECOT_MAIN), *names],
                              capture_output=True, text=True, check=True)
    assert settings.stdout.split("\n")[:3] == ["ssl = required", "disable_plaintext_auth = yes",
                                                "ssl_min_protocol = TLSv1.2"]
    cert, key = config.root / mail.TLS_CERT, config.root / mail.TLS_KEY
    assert key.stat().st_mode & 0o777 == 0o600
    shown = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-enddate"],
                           capture_output=True, text=True, check=True).stdout
    assert "CN" in shown and "notAfter" in shown
    before = cert.read_bytes(), key.read_bytes()
    mail.create_mailbox(config, {"address": "a@example.com", "password": "long enough pw", "quota_mb": 10})
    mail.create_domain(config, {"name": "example.org", "owner": "alice"})
    assert (cert.read_bytes(), key.read_bytes()) == before
    assert reloads.calls()[-1] == "exim", "a new domain rewrites exim's lists only; dovecot keeps its files"


def test_mailbox_password_is_hashed_and_verifies(agent):
    """The passwd-file holds a SHA512-CRYPT hash dovecot verifies, never the plaintext."""
    config, reloads = agent
    shown = mail.create_mailbox(config, {"address": "Info@Example.com", "password": SECRET,
                                         "quota_mb": 100})
    assert shown == {"address": "info@example.com", "quota_mb": 100, "forward": []}
    passwd = (config.root / mail.PASSWD)
    line = passwd.read_text().strip()
    assert line.startswith("info@example.com:{SHA512-CRYPT}$6$rounds=")
    assert line.endswith("userdb_quota_rule=*:storage=100M")
    assert passwd.stat().st_mode & 0o777 == 0o600
    for path in [*config.root.rglob("*"), *config.state_dir.rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    hashed = line.split(":")[1]
    doveadm = subprocess.run(["doveadm", "pw", "-t", hashed, "-p", SECRET],
                             capture_output=True, text=True)
    if doveadm.returncode != 127:
        assert "(verified)" in doveadm.stdout
    assert reloads.calls()[-1] == "dovecot"


def test_sha512_crypt_matches_glibc():
    """Our SHA-crypt gives glibc's answer for the same salt and rounds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")
    for password, salt, rounds in [("pw", "saltsalt", 5000), ("päss" * 20, "0123456789abcdef", 20000)]:
        prefix = "$6$" if rounds == 5000 else f"$6$rounds={rounds}$"
        assert mail.sha512_crypt(password, salt, rounds) == crypt.crypt(password, prefix + salt)


def test_sender_lists_are_exim_address_lists(agent):
    """White/black lists write addresses as given and domains as *@domain; exim accepts them."""
    config, reloads = agent
    rows = [{"id": 1, "sender": "boss@partner.com"}, {"id": 2, "sender": "trusted.org"}]
    held = mail.replace_senders(config, "whitelist", *envelope(rows))
    assert held["changed"] is True
    assert (config.root / mail.EXIM_DIR / "whitelist").read_text() == (
        "*@trusted.org\nboss@partner.com\n")
    assert reloads.calls()[-1] == "exim"
    calls = reloads.calls()
    before = config_digest(config)
    assert mail.replace_senders(config, "whitelist", *envelope(rows))["changed"] is False
    assert config_digest(config) == before and reloads.calls() == calls
    assert apply.read_list(config, "mail_whitelist")["rows"] == rows


def test_checker_refusal_returns_message_and_restores(agent, monkeypatch):
    """A broken exim config is refused with exim's message; the previous files are back."""
    config, reloads = agent
    before = config_digest(config)
    real = apply.render

    def broken(template, **context):
        text = real(template, **context)
        return text + b"bogus_option = 1\n" if template == "exim4.conf.j2" else text

    monkeypatch.setattr(apply, "render", broken)
    with pytest.raises(apply.CheckFailed) as caught:
        mail.create_domain(config, {"name": "example.org", "owner": "bob"})
    assert "bogus_option" in caught.value.message or "configuration error" in caught.value.message
    assert config_digest(config) == before
    assert [d["name"] for d in mail.list_domains(config)] == ["example.com"]


def test_reload_failure_restores(agent):
    """A failed reload puts the old files back and reloads them."""
    config, reloads = agent
    before = config_digest(config)
    reloads.fail()
    with pytest.raises(apply.ReloadFailed):
        mail.create_domain(config, {"name": "example.org", "owner": "bob"})
    reloads.fail(False)
    assert {k: h for k, h in config_digest(config).items() if "reloads" not in k} == {
        k: h for k, h in before.items() if "reloads" not in k}


def test_domain_with_mailboxes_cannot_be_deleted(agent):
    """Deleting a mail domain that still has mailboxes is a conflict."""
    config, _ = agent
    mail.create_mailbox(config, {"address": "a@example.com", "password": "long enough"})
    with pytest.raises(apply.Conflict):
        mail.delete_domain(config, "example.com")
    mail.delete_mailbox(config, "a@example.com")
    mail.delete_domain(config, "example.com")
    assert (config.root / mail.EXIM_DIR / "domains").read_text() == ""


@pytest.mark.parametrize(
    "data, field",
    [
        ({"address": "a@elsewhere.com", "password": "long enough"}, "address"),
        ({"address": "a\n@example.com", "password": "long enough"}, "address"),
        ({"address": "a:b@example.com", "password": "long enough"}, "address"),
        ({"address": "a@example.com", "password": "short"}, "password"),
        ({"address": "a@example.com", "password": "long\nenough"}, "password"),
        ({"address": "a@example.com", "password": "long enough", "quota_mb": -1}, "quota_mb"),
    ],
)
def test_bad_mailboxes_refused(agent, data, field):
    """Bad mailbox input names the field; nothing is written."""
    config, _ = agent
    before = config_digest(config)
    with pytest.raises(ValidationError) as caught:
        mail.create_mailbox(config, data)
    assert caught.value.field == field
    assert config_digest(config) == before
