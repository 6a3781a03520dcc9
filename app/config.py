"""Configuration read from the environment, with the embedded defaults of `make run`."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path


def data_dir() -> Path:
    """The data directory (`HOSTFLEET_DATA`, default ./data), created private on first use."""
    path = Path(os.environ.get("HOSTFLEET_DATA", "data")).resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _secret_key(path: Path) -> str:
    """The session-signing key: `SECRET_KEY`, else one generated once and kept in the data dir."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = path / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_hex(32)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


def database_uri(url: str) -> str:
    """SQLAlchemy URL for DATABASE_URL; plain postgresql:// URLs use the psycopg 3 driver."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def resolvers(text: str) -> list[tuple[str, int]]:
    """`NAME_PROOF_RESOLVERS`: comma-separated `address`, `address:port` or `[v6 address]:port`."""
    found = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":") if item.count(":") == 1 or item.startswith("[") else (item, "", "")
        found.append((host.strip("[]"), int(port or 53)))
    return found


def engine_options(uri: str) -> dict:
    """The connection pool of each panel process (docs/database.md has the sizing).

    DATABASE_POOL_SIZE connections stay open (default 5: a gunicorn worker's 4 request threads and one
    to spare); up to DATABASE_MAX_OVERFLOW more (default 64) open while a sync round's threads each
    hold one for their node, and close when returned. On a server database every connection is
    checked (pre-ping) as it leaves the pool, so one cut by a database restart is replaced, not used,
    and its session's time zone is UTC.
    """
    if uri in ("sqlite://", "sqlite:///:memory:"):
        return {}  # one in-memory database, one connection: Flask-SQLAlchemy gives it a static pool
    options = {
        "pool_size": int(os.environ.get("DATABASE_POOL_SIZE", "5")),
        "max_overflow": int(os.environ.get("DATABASE_MAX_OVERFLOW", "64")),
        "pool_timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT_S", "10")),
    }
    if not uri.startswith("sqlite"):
        options["pool_pre_ping"] = True
        # Times come back in UTC, as SQLite's do, whatever zone the server was set up with.
        options["connect_args"] = {"options": "-c timezone=UTC"}
    return options


class Config:
    """Production and `make run` settings; every value can be overridden from the environment."""

    def __init__(self) -> None:
        self.DATA_DIR = data_dir()
        self.SECRET_KEY = _secret_key(self.DATA_DIR)
        self.SQLALCHEMY_DATABASE_URI = database_uri(
            os.environ.get("DATABASE_URL", f"sqlite:///{self.DATA_DIR / 'hostfleet.db'}")
        )
        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(self.SQLALCHEMY_DATABASE_URI)
        self.REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL
        # The secret the panel's RQ jobs are signed with (app/queues.py); empty: derived from SECRET_KEY.
        # Every web process and worker of one panel must have the same one.
        self.JOB_SIGNING_KEY = os.environ.get("JOB_SIGNING_KEY", "")
        self.LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
        self.LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "50 per hour")
        self.TRUSTED_PROXIES = os.environ.get("TRUSTED_PROXIES", "")
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "") == "1"
        self.REMEMBER_COOKIE_HTTPONLY = True
        # A session unused this long is over: the signed cookie's timestamp is checked on every request
        # and renewed on each one (SESSION_REFRESH_EACH_REQUEST), so this is an idle lifetime.
        self.PERMANENT_SESSION_LIFETIME = timedelta(minutes=int(os.environ.get("SESSION_IDLE_MINUTES", "240")))
        self.WTF_CSRF_TIME_LIMIT = None
        self.AGENT_TIMEOUT_S = float(os.environ.get("AGENT_TIMEOUT_S", "5"))
        # sha512-crypt rounds of the hash hosting accounts' SFTP logins are checked against on the nodes
        # (app/services/os_passwords.py); 1,000 to 999,999,999.
        self.OS_PASSWORD_ROUNDS = int(os.environ.get("OS_PASSWORD_ROUNDS", "100000"))
        # The most an agent's answer may hold (a larger one is refused while it is read): any answer,
        # and a node's whole listing of one kind of user data (what a reconciliation reads).
        self.AGENT_MAX_ANSWER_BYTES = int(os.environ.get("AGENT_MAX_ANSWER_BYTES", str(4 * 2**20)))
        self.AGENT_MAX_LISTING_BYTES = int(os.environ.get("AGENT_MAX_LISTING_BYTES", str(32 * 2**20)))
        # Where proofs of control of a name (TXT _hostfleet-challenge.<name>) are looked up: resolvers that
        # follow the public delegation (not the cluster's own name servers, which serve customers' zones);
        # empty: this host's resolver (/etc/resolv.conf).
        self.NAME_PROOF_RESOLVERS = resolvers(os.environ.get("NAME_PROOF_RESOLVERS", ""))
        self.NAME_PROOF_TIMEOUT_S = float(os.environ.get("NAME_PROOF_TIMEOUT_S", "3"))
        # The panel's own host names, refused to customers with their parents and children (empty: this
        # host's fully qualified name); the nodes' names and addresses are refused as well.
        self.PANEL_HOST_NAMES = [n.strip() for n in os.environ.get("PANEL_HOST_NAMES", "").split(",") if n.strip()]
        # The ACME CA certificates are requested from (its directory URL), the account's e-mail, and the
        # CA bundle its HTTPS is checked with (empty: the system's).
        self.ACME_DIRECTORY_URL = os.environ.get("ACME_DIRECTORY_URL",
                                                 "https://acme-v02.api.letsencrypt.org/directory")
        self.ACME_EMAIL = os.environ.get("ACME_EMAIL", "")
        self.ACME_CA_BUNDLE = os.environ.get("ACME_CA_BUNDLE", "")
        self.API_TITLE = "Hostfleet API"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/api/v1"
        self.OPENAPI_JSON_PATH = "openapi.json"


class TestConfig(Config):
    """Settings for the test suite: a private data dir and the database the fixtures give (database_url,
    else TEST_DATABASE_URL, else SQLite in the data dir)."""

    TESTING = True

    def __init__(self, data: Path, redis_url: str, database_url: str | None = None) -> None:
        os.environ["HOSTFLEET_DATA"] = str(data)
        super().__init__()
        self.SQLALCHEMY_DATABASE_URI = database_uri(
            database_url or os.environ.get("TEST_DATABASE_URL", f"sqlite:///{data / 'test.db'}")
        )
        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(self.SQLALCHEMY_DATABASE_URI)
        self.REDIS_URL = redis_url
        self.RATELIMIT_STORAGE_URI = redis_url
        # No proof of control is looked up outside the test's own DNS servers: nothing listens here.
        self.NAME_PROOF_RESOLVERS = [("127.0.0.1", 9)]
        self.NAME_PROOF_TIMEOUT_S = 0.3
        self.PANEL_HOST_NAMES = ["panel.hostfleet.test"]
        # Every test user gets an SFTP hash: the lowest cost keeps hundreds of them quick.
        self.OS_PASSWORD_ROUNDS = 1000
        # No test asks a public CA: tests that issue point this at their own pebble.
        self.ACME_DIRECTORY_URL = "https://127.0.0.1:9/directory"
