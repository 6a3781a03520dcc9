"""Let's Encrypt's test CA (Debian's `pebble`) and its DNS server (`pebble-challtestsrv`) on loopback.

pebble resolves every name through challtestsrv, which answers A queries with 127.0.0.1 and TXT
queries with the records a test set through its management API; HTTP-01 validations then reach the
responder a test runs on pebble's `httpPort`. pebble's ACME endpoint is HTTPS: its certificate comes
from a throwaway CA made here, which the client is told to trust.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing() -> str | None:
    """None when pebble can run here, else why not."""
    for binary in ("pebble", "pebble-challtestsrv"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (apt-get install pebble; see tests/apt-packages.txt)"
    return None


def _pem(obj) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def listener_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it: (ca, cert, key) files for pebble's HTTPS."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble listener test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "listener-ca.pem", folder / "listener.pem", folder / "listener.key"
    paths[0].write_bytes(_pem(ca))
    paths[1].write_bytes(_pem(leaf))
    paths[2].write_bytes(_key_pem(key))
    return paths


class ChallengeResponder:
    """A tiny HTTP server answering /.well-known/acme-challenge/<token> from a folder's files, as the
    web node's nginx does from the agent's challenge folder."""

    def __init__(self, folder: Path, port: int):
        root = folder

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server API)
                prefix = "/.well-known/acme-challenge/"
                token = self.path[len(prefix):] if self.path.startswith(prefix) else ""
                path = root / token
                if not token or "/" in token or not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Pebble:
    """A running pebble and challtestsrv; URLs and the trust anchors a test needs."""

    folder: Path
    acme_port: int
    management_port: int
    http_port: int
    dns_port: int
    challtest_port: int
    listener_ca: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def directory_url(self) -> str:
        """The ACME directory."""
        return f"https://127.0.0.1:{self.acme_port}/dir"

    def root_pem(self) -> bytes:
        """The root that signs this pebble's intermediates (made anew at each start)."""
        return requests.get(f"https://127.0.0.1:{self.management_port}/roots/0", verify=str(self.listener_ca),
                            timeout=10).content

    def set_txt(self, name: str, value: str) -> None:
        """Publish a TXT record in challtestsrv (what the cluster's dns node does for DNS-01)."""
        fqdn = name if name.endswith(".") else name + "."
        requests.post(f"http://127.0.0.1:{self.challtest_port}/set-txt", json={"host": fqdn, "value": value},
                      timeout=10).raise_for_status()

    def clear_txt(self, name: str, _value: str = "") -> None:
        """Withdraw the TXT records of a name."""
        fqdn = name if name.endswith(".") else name + "."
        requests.post(f"http://127.0.0.1:{self.challtest_port}/clear-txt", json={"host": fqdn},
                      timeout=10).raise_for_status()

    def set_a(self, name: str, address: str) -> None:
        """Make a name resolve to another address (the domain resolving elsewhere)."""
        fqdn = name if name.endswith(".") else name + "."
        requests.post(f"http://127.0.0.1:{self.challtest_port}/add-a", json={"host": fqdn, "addresses": [address]},
                      timeout=10).raise_for_status()

    def clear_a(self, name: str) -> None:
        """Back to the default address for a name."""
        fqdn = name if name.endswith(".") else name + "."
        requests.post(f"http://127.0.0.1:{self.challtest_port}/clear-a", json={"host": fqdn},
                      timeout=10).raise_for_status()

    def stop(self) -> None:
        """Stop both servers (the ones this object started, by their process)."""
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start(folder: Path, *, sleep: bool = False, nonce_reject: int = 0) -> Pebble:
    """Start challtestsrv and pebble with real validation (PEBBLE_VA_ALWAYS_VALID=0); `sleep` keeps
    pebble's random validation delays, `nonce_reject` is the percentage of nonces it refuses."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, cert, key = listener_certificate(folder)
    peb = Pebble(folder, free_port(), free_port(), free_port(), free_port(), free_port(), ca)
    config = {"pebble": {
        "listenAddress": f"127.0.0.1:{peb.acme_port}",
        "managementListenAddress": f"127.0.0.1:{peb.management_port}",
        "certificate": str(cert), "privateKey": str(key),
        "httpPort": peb.http_port, "tlsPort": free_port(),
        "ocspResponderURL": "", "externalAccountBindingRequired": False,
    }}
    (folder / "pebble.json").write_text(json.dumps(config))
    env = {k: val for k, val in os.environ.items() if not k.startswith("PEBBLE_")}
    env.update(PEBBLE_VA_ALWAYS_VALID="0", PEBBLE_WFE_NONCEREJECT=str(nonce_reject))
    if not sleep:
        env["PEBBLE_VA_NOSLEEP"] = "1"
    logs = open(folder / "pebble.log", "ab")  # noqa: SIM115 (lives as long as the processes)
    peb.processes.append(subprocess.Popen(
        ["pebble-challtestsrv", "-management", f"127.0.0.1:{peb.challtest_port}",
         "-dns01", f"127.0.0.1:{peb.dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
         "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
        stdout=logs, stderr=subprocess.STDOUT, env=env))
    peb.processes.append(subprocess.Popen(
        ["pebble", "-config", str(folder / "pebble.json"), "-dnsserver", f"127.0.0.1:{peb.dns_port}"],
        stdout=logs, stderr=subprocess.STDOUT, env=env, cwd=folder))
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(peb.directory_url, verify=str(ca), timeout=2).raise_for_status()
            requests.get(f"http://127.0.0.1:{peb.challtest_port}/", timeout=2)
            break
        except requests.RequestException:
            if time.monotonic() > deadline or any(p.poll() is not None for p in peb.processes):
                peb.stop()
                raise RuntimeError(f"pebble did not start: {(folder / 'pebble.log').read_text()[-2000:]}") from None
            time.sleep(0.1)
    return peb
