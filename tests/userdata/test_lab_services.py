"""User data on a real Debian node, checked by the real services: nginx + PHP-FPM, bind, exim and dovecot.

One lab node is added through the API with roles web, dns and mail and reaches `ready` (its role
packages installed from the lab's repository). A panel user placed on it then works through the
master's API; every result is checked from the host with the services' own protocols (curl, dig,
SMTP, IMAP), never by reading the node's files.
"""

from __future__ import annotations

import imaplib
import smtplib
import ssl
import subprocess
import time
import uuid
from email.message import EmailMessage

import pytest
import requests

from tests.cluster.labpanel import LabPanel, reset
from tests.conftest import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

USER = "alice"
PASSWORD = "a long lab password"
MAILBOX_PASSWORD = "mailbox pass 42"
CHECKS: list[tuple[str, str, str]] = []
SYNCING: list[str] = []


def record(check: str, expected: str, seen: str) -> None:
    """One row of the table printed at the end of the module."""
    CHECKS.append((check, expected, seen))


class Env:
    """The panel, the lab node, its id in the panel and the user's id."""

    def __init__(self, panel: LabPanel, node, node_id: int, user_id: int):
        self.panel = panel
        self.node = node
        self.node_id = node_id
        self.user_id = user_id

    @property
    def address(self) -> str:
        return self.node.address

    def as_user(self, method: str, path: str, json=None, user: str = USER) -> requests.Response:
        """An API call as a panel user (Basic auth: the user's own credentials)."""
        return requests.request(method, self.panel.url + path, json=json, auth=(user, PASSWORD), timeout=120)

    def change(self, method: str, path: str, json=None, user: str = USER) -> requests.Response:
        """A change as a user; if the node is briefly `syncing` (a sync job at work), wait for `ready` and retry."""
        for _ in range(3):
            answer = self.as_user(method, path, json, user)
            if answer.status_code != 503 or "is syncing" not in answer.text:
                return answer
            SYNCING.append(f"{method} {path}: {answer.json()['error']}")
            self.panel.wait_state(self.node_id, "ready", timeout=120)
        return answer

    def admin(self, method: str, path: str, json=None) -> requests.Response:
        """An API call as the panel's administrator."""
        return self.panel.request(method, path, json)


@pytest.fixture(scope="module")
def env(lab_nodes, tmp_path_factory, request):
    """A fresh lab node added with web, dns and mail (ready), and a user placed on it; prints the table."""
    from tests.lab.lab import Lab

    node = lab_nodes(1)[0]
    reset(node)
    panel = LabPanel(tmp_path_factory.mktemp("labservices"), Lab().repo_line).start()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    try:
        started = time.monotonic()
        added = panel.add(node, "svc1", roles=["web", "dns", "mail"])
        assert added.status_code == 202, added.text
        node_id = added.json()["node"]["id"]
        panel.wait_state(node_id, "ready", timeout=900)
        software = panel.setup(node_id)["software"]
        assert software["state"] == "done", software
        assert {"nginx", "php-fpm", "bind9", "exim4-daemon-heavy", "dovecot-imapd"} <= set(software["packages"])
        record("node added (web, dns, mail) → ready", "ready", f"ready in {time.monotonic() - started:.0f} s")
        user = panel.request("POST", "/api/v1/users", {
            "name": USER, "password": PASSWORD, "roles": ["web", "dns", "mail"],
            "nodes": {"web": "svc1", "dns": "svc1", "mail": "svc1"}})
        assert user.status_code == 201, user.text
        environment = Env(panel, node, node_id, user.json()["id"])
        # The user's zones first, as a customer would: a web or mail domain needs its zone (docs/user-data.md).
        for zone in ("hf-lab.test", "hflab-mail.example.net"):
            made = environment.change("POST", "/api/v1/domains", {"name": zone, "ip": environment.address})
            assert made.status_code == 201, made.text
        yield environment
    finally:
        panel.stop()
        if reporter and CHECKS:
            capture = request.config.pluginmanager.get_plugin("capturemanager")
            with capture.global_and_fixture_disabled():
                width = max(len(c[0]) for c in CHECKS)
                reporter.write_line("")
                reporter.write_line(f"{'check':<{width}}  {'expected':<28}  seen")
                for check, expected, seen in CHECKS:
                    reporter.write_line(f"{check:<{width}}  {expected:<28}  {seen}")
                for note in SYNCING:
                    reporter.write_line(f"retried after the node was syncing: {note}")


def curl(address: str, host: str, path: str = "/") -> tuple[int, str]:
    """`curl -H 'Host: <host>' http://<address><path>` from the host: (status, body); (0, curl's message)
    when nginx closed the connection without an answer (444: the default server, for a host no site
    serves, as while a reload that adds the site is still swapping its workers)."""
    proc = subprocess.run(["curl", "-sS", "-m", "10", "-H", f"Host: {host}", "-w", "\n%{http_code}",
                           f"http://{address}{path}"], capture_output=True, text=True, timeout=20)
    if proc.returncode == 52:
        return 0, proc.stderr.strip()
    assert proc.returncode == 0, proc.stderr
    body, _, status = proc.stdout.rpartition("\n")
    return int(status), body


def eventually(func, check, timeout: float = 15):
    """func() until check(result) holds (a service reload finishes just after the agent answered); the last result."""
    seen = []

    def ok():
        seen.append(func())
        return True if check(seen[-1]) else None

    try:
        wait_until(ok, timeout, interval=0.3, what="the service to show the change")
    except Exception as exc:
        raise AssertionError(f"last result: {seen[-1] if seen else None}") from exc
    return seen[-1]


def served(env, host: str, path: str, check, timeout: float = 15) -> tuple[int, str]:
    """curl until check(status, body) holds: nginx's reload swaps its workers just after the answer."""
    seen: list[tuple[int, str]] = []

    def ok():
        seen.append(curl(env.address, host, path))
        return seen[-1] if check(*seen[-1]) else None

    try:
        return wait_until(ok, timeout, interval=0.3, what=f"http://{host}{path} to be served as expected")
    except Exception as exc:
        diagnosis = env.node.exec("nginx -T 2>&1 | grep -E 'server_name|include|return 503'; "
                                  f"ls -la /etc/nginx/conf.d /etc/nginx/hostfleet/{USER} /home/{USER}/www/*; "
                                  "tail -5 /var/log/nginx/error.log", check=False).stdout
        raise AssertionError(f"last answer {seen[-1] if seen else None}; on the node:\n{diagnosis}") from exc


def dig(address: str, name: str, rtype: str) -> list[str]:
    """`dig @<address> <name> <type> +short`: the answers, sorted."""
    proc = subprocess.run(["dig", f"@{address}", name, rtype, "+short", "+time=3", "+tries=2"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sorted(line for line in proc.stdout.splitlines() if line)


def imap_connect(address: str, tls: str = "starttls") -> imaplib.IMAP4:
    """An IMAP connection to the node: STARTTLS on 143, TLS on 993 ("imaps"), or none ("plain").
    The node's certificate is self-signed: the test checks the protocol, not the name."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if tls == "imaps":
        return imaplib.IMAP4_SSL(address, 993, ssl_context=context, timeout=10)
    conn = imaplib.IMAP4(address, 143, timeout=10)
    if tls == "starttls":
        conn.starttls(context)
    return conn


def imap_login(address: str, user: str, password: str, tls: str = "starttls") -> str:
    """Log in over IMAP; "ok" or dovecot's refusal."""
    try:
        conn = imap_connect(address, tls)
    except OSError as exc:
        return f"no connection: {exc}"
    try:
        conn.login(user, password)
        conn.logout()
        return "ok"
    except imaplib.IMAP4.error as exc:
        return f"refused: {exc}"


def imap_subjects(address: str, user: str, password: str) -> list[str]:
    """The Subject of every message in the mailbox's INBOX."""
    conn = imap_connect(address)
    try:
        conn.login(user, password)
        conn.select("INBOX", readonly=True)
        _, data = conn.search(None, "ALL")
        subjects = []
        for num in data[0].split():
            _, parts = conn.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(parts[0][1].decode().partition(":")[2].strip())
        return subjects
    finally:
        conn.logout()


def send(address: str, to: str, subject: str) -> None:
    """One message by SMTP to the node's port 25."""
    msg = EmailMessage()
    msg["From"] = "tester@outside.example"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("sent by the lab test\n")

    def sent():
        try:
            with smtplib.SMTP(address, 25, timeout=20) as smtp:
                smtp.send_message(msg)
            return True
        except (ConnectionRefusedError, smtplib.SMTPServerDisconnected):
            # exim re-executes itself on a reload and listens again a moment later.
            return False

    wait_until(sent, 15, interval=0.3, what="exim to accept the message")


def test_web_domain_and_php(env):
    """A web domain serves its index page; with PHP on, a .php page runs in the owner's pool."""
    answer = env.change("POST", "/api/v1/webdomains", {"name": "site.hf-lab.test"})
    assert answer.status_code == 201, answer.text
    status, body = served(env, "site.hf-lab.test", "/", lambda st, b: st == 200 and "<h1>site.hf-lab.test</h1>" in b)
    record("curl site: index page", "200, the domain's page", f"{status}, h1 site.hf-lab.test")

    answer = env.change("POST", "/api/v1/webdomains", {"name": "php.hf-lab.test", "php": True})
    assert answer.status_code == 201, answer.text
    source = '<?php echo "sum=" . (6 * 7) . " user=" . posix_getpwuid(posix_geteuid())["name"];'
    env.node.exec(f"cat > /home/{USER}/www/php.hf-lab.test/info.php", input=source)
    status, body = served(env, "php.hf-lab.test", "/info.php", lambda st, b: st == 200 and "sum=" in b)
    assert body.strip() == f"sum=42 user={USER}", (status, body)
    assert "<?php" not in body
    record("curl .php with PHP on", f"200, sum=42 user={USER}", f"{status}, {body.strip()}")



INI_SCRIPT = """<?php
foreach (['memory_limit', 'upload_max_filesize', 'post_max_size', 'max_execution_time', 'display_errors'] as $k) {
    echo $k . '=' . ini_get($k) . "\n";
}
echo 'raised=' . var_export(ini_set('memory_limit', '1G'), true) . ' now=' . ini_get('memory_limit') . "\n";
"""


def test_a_sites_php_settings_reach_php_and_its_scripts_cannot_raise_them(env):
    """PHP settings on one site: php-fpm runs that site in a pool of its own with them as admin values (a
    script's ini_set is refused); the owner's other PHP site keeps the server's defaults; going back to {}
    gives the site the defaults again."""
    made = env.change("POST", "/api/v1/webdomains", {"name": "ini.hf-lab.test", "php": True, "php_settings": {
        "memory_limit": "200M", "upload_max_filesize": "48M", "post_max_size": "50M",
        "max_execution_time": 90, "display_errors": True}})
    assert made.status_code == 201, made.text
    assert made.json()["php_settings"] == {"memory_limit": "200M", "upload_max_filesize": "48M",
                                          "post_max_size": "50M", "max_execution_time": 90, "display_errors": "on"}
    for site in ("ini.hf-lab.test", "php.hf-lab.test"):
        env.node.exec(f"cat > /home/{USER}/www/{site}/ini.php", input=INI_SCRIPT)
    _, own = served(env, "ini.hf-lab.test", "/ini.php", lambda st, b: st == 200 and "memory_limit=" in b)
    assert ("memory_limit=200M\nupload_max_filesize=48M\npost_max_size=50M\nmax_execution_time=90\n"
            "display_errors=1\n") in own, own
    assert "now=200M" in own, own
    _, other = served(env, "php.hf-lab.test", "/ini.php", lambda st, b: st == 200 and "memory_limit=" in b)
    assert "memory_limit=128M" in other and "upload_max_filesize=2M" in other, other
    record("a site's PHP settings", "200M/48M/50M/90/on, ini_set refused, other site 128M",
           f"{own.splitlines()[0]}, {own.splitlines()[-1]}, other {other.splitlines()[0]}")
    site_id = made.json()["id"]
    back = env.change("PUT", f"/api/v1/webdomains/{site_id}", {"php_settings": {}})
    assert back.status_code == 200 and back.json()["php_settings"] == {}, back.text
    served(env, "ini.hf-lab.test", "/ini.php", lambda st, b: st == 200 and "memory_limit=128M" in b)
    refused = env.change("PUT", f"/api/v1/webdomains/{site_id}", {"php_settings": {"upload_max_filesize": "64M"}})
    assert refused.status_code in (400, 422) and "php_settings.upload_max_filesize" in refused.text, refused.text


SECRET = "alice-db-secret-7f3a"
ALICE_SECRET_FILE = f"/home/{USER}/www/php.hf-lab.test/wp-config.php"
OTHER = "bob"


@pytest.fixture(scope="module")
def second_customer(env):
    """A second panel user on the same node with a PHP site; alice's site holds a wp-config.php that any
    account could read by its mode (0644), as an uploaded file usually is."""
    env.node.exec(f"cat > {ALICE_SECRET_FILE} && chown {USER}:{USER} {ALICE_SECRET_FILE} "
                  f"&& chmod 0644 {ALICE_SECRET_FILE}", input=f"<?php $db_password = '{SECRET}';\n")
    made = env.admin("POST", "/api/v1/users", {"name": OTHER, "password": PASSWORD, "roles": ["web", "dns"],
                                               "nodes": {"web": "svc1", "dns": "svc1"}})
    assert made.status_code == 201, made.text
    # bob's own zone first: a name under alice's hf-lab.test is hers (the name registry).
    zone = env.change("POST", "/api/v1/domains", {"name": "bob-lab.test", "ip": env.address}, user=OTHER)
    assert zone.status_code == 201, zone.text
    site = env.change("POST", "/api/v1/webdomains", {"name": "bob.bob-lab.test", "php": True}, user=OTHER)
    assert site.status_code == 201, site.text
    return f"/home/{OTHER}/www/bob.bob-lab.test"


READ_SCRIPT = f"""<?php
$path = '{ALICE_SECRET_FILE}';
$read = @file_get_contents($path);
$shell = function_exists('shell_exec') ? shell_exec('cat ' . escapeshellarg($path) . ' 2>&1') : 'no shell_exec';
echo "user=" . posix_getpwuid(posix_geteuid())['name'] . "\nread=" . var_export($read, true);
echo "\nshell=" . trim((string) $shell) . "\n";
"""


def test_another_customers_php_cannot_read_the_first_customers_files(env, second_customer):
    """bob's PHP asks for alice's wp-config.php, through PHP (open_basedir) and through a shell (the home's
    mode): both fail and the secret never shows; alice's own PHP still reads it."""
    env.node.exec(f"cat > {second_customer}/steal.php", input=READ_SCRIPT)
    status, body = served(env, "bob.bob-lab.test", "/steal.php", lambda st, b: st == 200 and "user=" in b)
    assert "user=bob" in body and "read=false" in body and SECRET not in body, body
    env.node.exec(f"cat > /home/{USER}/www/php.hf-lab.test/own.php", input=READ_SCRIPT)
    own_status, own = served(env, "php.hf-lab.test", "/own.php", lambda st, b: st == 200 and "user=" in b)
    assert f"user={USER}" in own and SECRET in own, own
    shell = body.split("shell=", 1)[1].strip()
    record("bob's PHP reads alice's wp-config.php", "refused, no secret", f"{status}, read=false, shell: {shell[:40]}")
    record("alice's PHP reads her own file", "the secret", f"{own_status}, secret shown")


def test_nginx_does_not_follow_a_customers_link_to_files_not_theirs(env, second_customer):
    """A link in bob's site to alice's wp-config.php, or to /etc/passwd, is not served, nothing of either
    shows (disable_symlinks if_not_owner: nginx itself may enter every home); bob's own file is served."""
    env.node.exec(f"cd {second_customer} && ln -s {ALICE_SECRET_FILE} leak.txt && ln -s /etc/passwd passwd.txt "
                  f"&& echo 'bob plain' > plain.txt && chown -h {OTHER}:{OTHER} leak.txt passwd.txt plain.txt")
    served(env, "bob.bob-lab.test", "/plain.txt", lambda st, b: st == 200 and "bob plain" in b)
    leak = curl(env.address, "bob.bob-lab.test", "/leak.txt")
    passwd = curl(env.address, "bob.bob-lab.test", "/passwd.txt")
    # try_files finds no file it may open (the link is refused), hence 404 rather than 403.
    assert leak[0] in (403, 404) and SECRET not in leak[1], leak
    assert passwd[0] in (403, 404) and "root:x:0:0" not in passwd[1], passwd
    record("nginx: bob's link to alice's file / to /etc/passwd", "refused (403/404)", f"{leak[0]} / {passwd[0]}")


def test_unknown_host_gets_nothing_of_a_customer(env):
    """A request for a host no site serves gets no answer at all (444 from the default server), not the
    first customer's site."""
    status, message = curl(env.address, "unknown.hf-lab.test")
    assert status == 0 and "Empty reply" in message, (status, message)
    record("curl an unknown host", "empty reply (444)", message)


def _records_by(env, domain_id: int) -> dict[tuple[str, str], dict]:
    items = env.as_user("GET", f"/api/v1/domains/{domain_id}/records").json()["items"]
    return {(r["name"], r["type"]): r for r in items}


def test_dns_records_answer_and_edit_raises_serial(env):
    """dig answers exactly the zone's records; an edited record raises the serial and dig shows it."""
    zone = "zone.hf-lab.test"
    answer = env.change("POST", "/api/v1/domains", {"name": zone, "ip": env.address, "records": [
        {"name": "app", "type": "A", "value": "198.18.0.77"},
        {"name": "app", "type": "AAAA", "value": "2001:db8::7"},
        {"name": "@", "type": "MX", "value": f"mx.{zone}.", "priority": 10},
        {"name": "@", "type": "TXT", "value": "v=spf1 -all"},
        {"name": "docs", "type": "CNAME", "value": f"app.{zone}."},
    ]})
    assert answer.status_code == 201, answer.text
    domain_id = answer.json()["id"]
    expected = {
        (zone, "A"): [env.address], (f"app.{zone}", "A"): ["198.18.0.77"], (f"app.{zone}", "AAAA"): ["2001:db8::7"],
        (zone, "MX"): [f"10 mx.{zone}."], (zone, "TXT"): ['"v=spf1 -all"'], (f"docs.{zone}", "CNAME"): [f"app.{zone}."],
        (zone, "NS"): [f"ns1.{zone}."],
    }
    seen = eventually(lambda: {key: dig(env.address, *key) for key in expected}, lambda got: got == expected)
    record("dig A, AAAA, MX, TXT, CNAME, NS", "exactly the zone's records", f"{len(seen)} answers match")

    serial = int(dig(env.address, zone, "SOA")[0].split()[2])
    app_a = _records_by(env, domain_id)[("app", "A")]
    changed = env.change("PUT", f"/api/v1/domains/{domain_id}/records/{app_a['id']}", {"value": "198.18.0.78"})
    assert changed.status_code == 200, changed.text
    eventually(lambda: dig(env.address, f"app.{zone}", "A"), lambda got: got == ["198.18.0.78"])
    new_serial = int(dig(env.address, zone, "SOA")[0].split()[2])
    assert new_serial > serial
    record("record edited → SOA serial, dig", "serial up, new value", f"{serial} → {new_serial}, 198.18.0.78")


def test_mail_smtp_imap_and_delivery(env):
    """SMTP accepts RCPT TO the mailbox and rejects an unknown one; IMAP logs in; a message arrives."""
    assert env.change("POST", "/api/v1/maildomains", {"name": "hflab-mail.example.net"}).status_code == 201
    box = env.change("POST", "/api/v1/mailboxes", {"address": "info@hflab-mail.example.net",
                                                    "password": MAILBOX_PASSWORD})
    assert box.status_code == 201, box.text
    def rcpt_codes():
        try:
            with smtplib.SMTP(env.address, 25, timeout=20) as smtp:
                smtp.ehlo("tester.outside.example")
                assert smtp.mail("tester@outside.example")[0] == 250
                return smtp.rcpt("info@hflab-mail.example.net"), smtp.rcpt("nobody@hflab-mail.example.net")
        except OSError as exc:
            # exim re-executes itself on a reload and listens again a moment later.
            return (0, str(exc)), (0, str(exc))

    known, unknown = eventually(rcpt_codes, lambda got: got[0][0] == 250)
    assert unknown[0] == 550, unknown
    record("SMTP RCPT TO mailbox / unknown", "250 / 550", f"{known[0]} / {unknown[0]}")

    good = eventually(lambda: imap_login(env.address, "info@hflab-mail.example.net", MAILBOX_PASSWORD),
                      lambda got: got == "ok")
    bad = imap_login(env.address, "info@hflab-mail.example.net", "not the password")
    assert good == "ok" and bad.startswith("refused"), (good, bad)
    record("IMAP login right / wrong password", "ok / refused", f"{good} / {bad[:40]}")
    imaps = imap_login(env.address, "info@hflab-mail.example.net", MAILBOX_PASSWORD, tls="imaps")
    plain = imap_login(env.address, "info@hflab-mail.example.net", MAILBOX_PASSWORD, tls="plain")
    # Without TLS dovecot offers no way to log in at all (LOGINDISABLED), so the password is never sent.
    assert imaps == "ok" and plain.startswith("refused"), (imaps, plain)
    record("IMAP on 993 / without TLS on 143", "ok / refused", f"{imaps} / {plain[:40]}")

    subject = f"lab delivery {uuid.uuid4().hex[:8]}"
    send(env.address, "info@hflab-mail.example.net", subject)
    wait_until(lambda: subject in imap_subjects(env.address, "info@hflab-mail.example.net", MAILBOX_PASSWORD), 30,
               interval=0.5, what="the message to reach the mailbox")
    record("SMTP message → IMAP INBOX", "found", "found")


def test_forwarding_keeps_a_copy(env):
    """A mailbox forwarding to another: a message to it lands in both."""
    made = env.change("POST", "/api/v1/mailboxes", {"address": "sales@hflab-mail.example.net",
                                                     "password": MAILBOX_PASSWORD})
    assert made.status_code == 201, made.text
    changed = env.change("PUT", f"/api/v1/mailboxes/{made.json()['id']}", {"forward": ["info@hflab-mail.example.net"]})
    assert changed.status_code == 200 and changed.json()["forward"] == ["info@hflab-mail.example.net"], changed.text
    subject = f"lab forward {uuid.uuid4().hex[:8]}"
    send(env.address, "sales@hflab-mail.example.net", subject)
    wait_until(lambda: subject in imap_subjects(env.address, "info@hflab-mail.example.net", MAILBOX_PASSWORD), 30,
               interval=0.5, what="the forwarded copy to reach the target mailbox")
    wait_until(lambda: subject in imap_subjects(env.address, "sales@hflab-mail.example.net", MAILBOX_PASSWORD), 30,
               interval=0.5, what="the kept copy in the forwarding mailbox")
    record("forward sales → info", "copy in both", "copy in both")


def exim_route(env, address: str) -> str:
    """`exim -bt` on the node: how its exim routes the address (router, transport, hosts) or why it cannot."""
    proc = env.node.exec(["exim", "-bt", address], check=False, timeout=60)
    return proc.stdout + proc.stderr


def test_hosted_mail_domains_are_local_only_where_their_mx_points(env):
    """Three of alice's mail domains on the node, each with a mailbox, under her zone hflab-mail.example.net
    as the node's bind serves it: here. (made with "dns": MX mail.here → the node), away. (MX to
    198.18.0.250) and bare. (no MX, its address 198.18.0.250). `exim -bt` on the node routes here.'s
    mailbox to its maildir and the other two out by DNS to 198.18.0.250, never to the local mailbox; over
    SMTP from outside, RCPT TO here. is 250 and away. is a relay (550)."""
    zone, elsewhere = "hflab-mail.example.net", "198.18.0.250"
    here, away, bare = (f"info@{label}.{zone}" for label in ("here", "away", "bare"))
    zones = {z["name"]: z["id"] for z in env.as_user("GET", "/api/v1/domains").json()["items"]}
    for record_body in ({"name": "away", "type": "MX", "value": f"mx.away.{zone}.", "priority": 10},
                        {"name": "mx.away", "type": "A", "value": elsewhere},
                        {"name": "bare", "type": "A", "value": elsewhere}):
        added = env.change("POST", f"/api/v1/domains/{zones[zone]}/records", record_body)
        assert added.status_code == 201, added.text
    made = env.change("POST", "/api/v1/maildomains", {"name": f"here.{zone}", "dns": True})
    assert made.status_code == 201 and made.json()["dns"].get("records") == 2, made.text
    for domain in (f"away.{zone}", f"bare.{zone}"):
        assert env.change("POST", "/api/v1/maildomains", {"name": domain}).status_code == 201
    for address in (here, away, bare):
        box = env.change("POST", "/api/v1/mailboxes", {"address": address, "password": MAILBOX_PASSWORD})
        assert box.status_code == 201, box.text
    eventually(lambda: dig(env.address, f"here.{zone}", "MX") + dig(env.address, f"bare.{zone}", "A"),
               lambda got: got == [f"10 mail.here.{zone}.", elsewhere])

    local = eventually(lambda: exim_route(env, here), lambda got: "hostfleet_maildir" in got)
    assert "router = hostfleet_mailbox" in local, local
    routed_away, routed_bare = exim_route(env, away), exim_route(env, bare)
    for routed in (routed_away, routed_bare):
        assert "hostfleet_maildir" not in routed and "router = hostfleet_remote" in routed, routed
        assert f"[{elsewhere}]" in routed, routed
    assert f"mx.away.{zone}" in routed_away and "MX=10" in routed_away, routed_away
    routers = [line.strip().split(",")[0] for out in (local, routed_away, routed_bare) for line in out.splitlines()
               if "router =" in line]
    record("exim -bt: MX here / MX away / no MX", "mailbox / remote / remote", " / ".join(routers))

    def rcpt_codes():
        try:
            with smtplib.SMTP(env.address, 25, timeout=20) as smtp:
                smtp.ehlo("tester.outside.example")
                assert smtp.mail("tester@outside.example")[0] == 250
                return smtp.rcpt(here)[0], smtp.rcpt(away)[0]
        except OSError:
            # exim re-executes itself on a reload and listens again a moment later.
            return 0, 0

    codes = eventually(rcpt_codes, lambda got: got[0] == 250)
    assert codes == (250, 550), codes
    record("SMTP RCPT TO MX here / MX away", "250 / 550", f"{codes[0]} / {codes[1]}")


def test_suspend_and_resume(env):
    """Suspended: sites answer 503 "suspended", mailboxes refuse IMAP; resumed: both back."""
    env.panel.wait_state(env.node_id, "ready", timeout=120)
    suspended = env.admin("PUT", f"/api/v1/users/{env.user_id}", {"active": False})
    assert suspended.status_code == 200, suspended.text
    assert [(n["node"], n["outcome"]) for n in suspended.json()["nodes"]] == [("svc1", "applied")]
    status, body = served(env, "site.hf-lab.test", "/", lambda st, b: st == 503)
    assert "is suspended" in body and "This site is hosted here" not in body, (status, body)
    php_status, php_body = curl(env.address, "php.hf-lab.test", "/info.php")
    assert php_status == 503 and "sum=" not in php_body
    login = eventually(lambda: imap_login(env.address, "info@hflab-mail.example.net", MAILBOX_PASSWORD),
                       lambda got: got.startswith("refused"))
    record("suspend: curl / IMAP", "503 suspended / refused", f"{status} / {login[:30]}")

    env.panel.wait_state(env.node_id, "ready", timeout=120)
    resumed = env.admin("PUT", f"/api/v1/users/{env.user_id}", {"active": True})
    assert resumed.status_code == 200, resumed.text
    assert [(n["node"], n["outcome"]) for n in resumed.json()["nodes"]] == [("svc1", "applied")]
    status, body = served(env, "site.hf-lab.test", "/", lambda st, b: st == 200 and "<h1>site.hf-lab.test</h1>" in b)
    assert served(env, "php.hf-lab.test", "/info.php", lambda st, b: st == 200)[1].startswith("sum=42")
    login = eventually(lambda: imap_login(env.address, "info@hflab-mail.example.net", MAILBOX_PASSWORD),
                       lambda got: got == "ok")
    record("resume: curl / IMAP", "200 page / ok", f"{status} / {login}")


def test_cut_node_clear_error_then_healed(env):
    """The holding node cut: a clear error naming it and its state, nothing changed; healed: works."""
    # Every user's sites (a second customer has some here too), as the administrator's index shows them.
    before = sorted(d["name"] for d in env.admin("GET", "/api/v1/webdomains").json()["items"])
    env.node.cut()
    try:
        env.panel.wait_state(env.node_id, "unavailable", timeout=90)
        refused = env.as_user("POST", "/api/v1/webdomains", {"name": "late.hf-lab.test"})
        assert refused.status_code == 503, refused.text
        message = refused.json()["error"]
        assert "svc1" in message and "unavailable" in message and "nothing was changed" in message, message
        index = env.admin("GET", "/api/v1/webdomains").json()["items"]
        assert sorted(d["name"] for d in index) == before
        assert all(d.get("available") is False for d in index)
        on_node = env.node.exec(f"ls /etc/nginx/hostfleet/{USER}").stdout.split()
        assert "late.hf-lab.test.conf" not in on_node
    finally:
        env.node.heal()
    record("node cut: create web domain", "503 naming svc1, unavailable", message[:60])
    env.panel.wait_state(env.node_id, "ready", timeout=120)
    again = env.change("POST", "/api/v1/webdomains", {"name": "late.hf-lab.test"})
    assert again.status_code == 201, again.text
    status, _ = served(env, "late.hf-lab.test", "/", lambda st, b: st == 200 and "<h1>late.hf-lab.test</h1>" in b)
    record("healed: create + curl", "201, 200", f"{again.status_code}, {status}")
