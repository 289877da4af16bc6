"""Real things for the server's tests: a server key made by the server's own
keygen, gpg encryption in a private GNUPGHOME, a PostgreSQL started from
Debian's binaries, server directories with a config file, and gunicorn.

Test modules import the fixtures they use from here.  The key and the
PostgreSQL cluster are made once per process and removed at exit.
"""

import atexit
import contextlib
import functools
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.request
import uuid

import pytest

from pyweb_popcon import report
from pyweb_popcon.server import published
from pyweb_popcon.server import settings as server_settings
from pyweb_popcon.server.store import DAY_NS, Store, _suffix

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "src")
PYTHON = "/usr/bin/python3"
ENV = dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin", PYTHONPATH=SRC)
BACKENDS = ("sqlite", "postgresql")
PASSWORD_ROLE = "ppc_password"


def _scratch(prefix):
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def run_server(conf_path, *args, check=True, **kw):
    """Run `python3 -m pyweb_popcon.server --config CONF ARGS`."""
    proc = subprocess.run([PYTHON, "-m", "pyweb_popcon.server", "--config",
                           conf_path, *args], env=ENV, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, **kw)
    if check and proc.returncode:
        raise AssertionError(f"{args} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


# -- keys ------------------------------------------------------------------

def _keygen(prefix):
    """(gnupg home, fingerprint, armored public key) made by `keygen`."""
    top = _scratch(prefix)
    conf = os.path.join(top, "server.conf")
    with open(conf, "w") as f:
        f.write(f'STATE_DIR="{top}/state"\n')
    out = run_server(conf, "keygen", "--export", f"{top}/pub.asc")
    with open(f"{top}/pub.asc", "rb") as f:
        return f"{top}/state/gnupg", out.stdout.strip(), f.read()


@functools.cache
def server_key():
    """The server's key, made once per test process."""
    return _keygen("ppc-key-")


class Encryptor:
    """Encrypts to one public key with the gpg CLI in its own GNUPGHOME."""

    def __init__(self, public_key, fingerprint):
        self.home = _scratch("ppc-enc-")
        # gpg may start an agent there; it must not outlive the tests.
        atexit.register(subprocess.run, ["gpgconf", "--homedir", self.home,
                                         "--kill", "all"], check=False)
        self.fingerprint = fingerprint
        subprocess.run(["gpg", "--homedir", self.home, "--batch", "--import"],
                       input=public_key, check=True, capture_output=True)

    def encrypt_many(self, plaintexts):
        """Armored ciphertexts, one gpg process for all of them."""
        work = tempfile.mkdtemp(dir=self.home)
        try:
            names = [os.path.join(work, str(i))
                     for i in range(len(plaintexts))]
            for name, data in zip(names, plaintexts):
                with open(name, "wb") as f:
                    f.write(data)
            for start in range(0, len(names), 1000):
                subprocess.run(
                    ["gpg", "--homedir", self.home, "--batch", "--yes",
                     "--trust-model", "always", "--armor", "--recipient",
                     self.fingerprint, "--encrypt-files",
                     *names[start:start + 1000]],
                    check=True, capture_output=True)
            out = []
            for name in names:
                with open(name + ".asc", "rb") as f:
                    out.append(f.read())
            return out
        finally:
            shutil.rmtree(work)

    def encrypt(self, plaintext):
        return self.encrypt_many([plaintext])[0]


@functools.cache
def encryptor():
    _, fpr, public = server_key()
    return Encryptor(public, fpr)


@functools.cache
def stranger():
    """An Encryptor for a key that is not the server's."""
    _, fpr, public = _keygen("ppc-stranger-")
    return Encryptor(public, fpr)


# -- PostgreSQL -------------------------------------------------------------

def _pg_user():
    """Who runs postgres: it refuses root, so as root a system user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user to run PostgreSQL as")


def pg_bin():
    """The bin directory of the newest PostgreSQL server installed (15 on
    bookworm, 17 on trixie), as pg_wrapper picks it: pg_config's is the
    client's, and initdb is not on PATH."""
    found = {tuple(map(int, path.split("/")[4].split("."))): path
             for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")}
    if not found:
        raise RuntimeError("no PostgreSQL server installed (make deps "
                           "installs postgresql)")
    return os.path.dirname(found[max(found)])


@functools.cache
def postgres():
    """(socket dir, port) of a throw-away cluster, stopped at exit."""
    top = _scratch("ppc-pg-")
    user = _pg_user()
    as_user = {"user": user.pw_uid, "group": user.pw_gid} if user else {}
    if user:
        os.chown(top, user.pw_uid, user.pw_gid)
    data, sock = os.path.join(top, "data"), os.path.join(top, "sock")
    os.mkdir(sock)
    if user:
        os.chown(sock, user.pw_uid, user.pw_gid)
    env = dict(ENV, LC_ALL="C.UTF-8", HOME=top)
    server_bin = pg_bin()
    subprocess.run([f"{server_bin}/initdb", "-D", data, "-U", "popcon",
                    "--auth=trust", "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True, cwd=top, env=env,
                   stdin=subprocess.DEVNULL, **as_user)
    # One role must give its password (DATABASE_PASSWORD_FILE's tests);
    # every other one is trusted.
    hba = os.path.join(data, "pg_hba.conf")
    with open(hba) as f:
        rules = f.read()
    with open(hba, "w") as f:
        f.write(f"local all {PASSWORD_ROLE} scram-sha-256\n{rules}")
    port = free_port()
    server = subprocess.Popen(
        [f"{server_bin}/postgres", "-D", data, "-k", sock, "-h", "", "-p",
         str(port), "-F", "-c", "max_connections=50"],
        cwd=top, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=open(f"{top}/log", "wb"),
        **as_user)

    def stop():
        server.terminate()
        server.wait(30)
    atexit.register(stop)
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(sock, f".s.PGSQL.{port}")):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(open(f"{top}/log").read())
        time.sleep(0.1)
    time.sleep(0.2)
    return sock, port


def new_postgres_database(owner="popcon"):
    """The URL of a new, empty database in the throw-away cluster."""
    import psycopg
    sock, port = postgres()
    name = "t" + uuid.uuid4().hex[:12]
    for attempt in range(50):
        try:
            with psycopg.connect(f"postgresql://popcon@/postgres?host={sock}"
                                 f"&port={port}", autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name} OWNER {owner}")
            break
        except psycopg.OperationalError:
            time.sleep(0.2)
    return f"postgresql://{owner}@/{name}?host={sock}&port={port}"


def password_database(password):
    """The URL (without the password) of a new, empty database owned by
    PASSWORD_ROLE, whose password becomes `password`."""
    import psycopg
    sock, port = postgres()
    with psycopg.connect(f"postgresql://popcon@/postgres?host={sock}"
                         f"&port={port}", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                            (PASSWORD_ROLE,)).fetchall():
            conn.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN")
        conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            psycopg.sql.Identifier(PASSWORD_ROLE),
            psycopg.sql.Literal(password)))
    return new_postgres_database(owner=PASSWORD_ROLE)


def database_url(backend, directory):
    if backend == "sqlite":
        return f"sqlite://{directory}/popcon.sqlite3"
    return new_postgres_database()


# -- a server on disk --------------------------------------------------------

def free_ports(count):
    """`count` distinct free ports on 127.0.0.1: all bound at once while
    picked, as the kernel may hand a port just closed out again."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port():
    return free_ports(1)[0]


# What the receiver says each kind of published file is.
MEDIA_TYPES = {"html": "text/html; charset=utf-8",
               "json": "application/json",
               "txt": "text/plain; charset=utf-8",
               "svg": "image/svg+xml",
               "csv": "text/csv; charset=utf-8"}


def published_names():
    """Every name aggregate publishes, from the one list of them (of the
    leading frameworks' trend charts, Django's)."""
    return (*published.FILES, *published.CHARTS.values(),
            published.trend_chart("django"))


class Server:
    """Spool, state and output directories, a config file and the key."""

    def __init__(self, top, backend="sqlite", min_hosts=5, database=None):
        self.top = str(top)
        self.backend = backend
        self.spool = f"{self.top}/spool"
        self.state = f"{self.top}/state"
        self.output = f"{self.top}/www"
        self.incoming = f"{self.spool}/incoming"
        self.quarantine = f"{self.spool}/quarantine"
        for d in (self.incoming, self.state, self.output):
            os.makedirs(d, exist_ok=True)
        home, self.fingerprint, self.public_key = server_key()
        shutil.copytree(home, f"{self.state}/gnupg",
                        ignore=shutil.ignore_patterns("S.*"))
        self.port = free_port()
        self.database_url = database or database_url(backend, self.state)
        self.conf = f"{self.top}/server.conf"
        with open(self.conf, "w") as f:
            f.write(textwrap.dedent(f"""\
                SPOOL_DIR="{self.spool}"
                STATE_DIR="{self.state}"
                DATABASE_URL="{self.database_url}"
                OUTPUT_DIR="{self.output}"
                MIN_HOSTS="{min_hosts}"
                LISTEN="127.0.0.1:{self.port}"
                """))
        self.config = server_settings.load(self.conf)
        self.gnupg_home = server_settings.gnupg_home(self.config)

    def run(self, *args, **kw):
        return run_server(self.conf, *args, **kw)

    def store(self):
        return Store(self.database_url)

    def drop(self, data, received=None, name=None):
        """Put a submission into incoming/ as the receiver would."""
        name = name or uuid.uuid4().hex
        path = os.path.join(self.incoming, name)
        with open(path, "wb") as f:
            f.write(data)
        if received is not None:
            os.utime(path, ns=(int(received * 1e9), int(received * 1e9)))
        return name

    def incoming_files(self):
        return sorted(n for n in os.listdir(self.incoming)
                      if not n.startswith("."))

    def quarantined(self):
        """{name: reason code} of what is in quarantine/."""
        out = {}
        for path in glob.glob(f"{self.quarantine}/*.reason"):
            with open(path) as f:
                out[os.path.basename(path)[:-7]] = f.read().split(":")[0]
        return out


def dump(store):
    """Everything in the database, as sorted tuples, to compare runs; and
    which partition each host is in, to show a host in two or misplaced."""
    found = {table: sorted(tuple(r) for r in store.query(
                 f"SELECT * FROM {table}"))
             for table in ("hosts", "host_frameworks", "host_pythons",
                           "history")}
    found["partitions"] = sorted(
        (day, host_id, received // DAY_NS)
        for day, in store.query("SELECT day FROM partitions")
        for host_id, received in store.query(
            f"SELECT host_id, received FROM hosts_{_suffix(day)}"))
    return found


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def server(tmp_path, backend):
    return Server(tmp_path / "srv", backend)


@contextlib.contextmanager
def running_receiver(srv, log_path, python_flags=()):
    """`serve` for `srv` under gunicorn until the block ends; the base URL.
    `python_flags` go to the interpreter (-X importtime, say)."""
    srv.log = str(log_path)
    with open(srv.log, "wb") as log:
        proc = subprocess.Popen(
            [PYTHON, *python_flags, "-m", "pyweb_popcon.server", "--config",
             srv.conf, "serve", "--workers", "2"], env=ENV, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{srv.port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(base + "/health", timeout=2).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(open(srv.log).read())
                    time.sleep(0.1)
            yield base
        finally:
            proc.send_signal(signal.SIGINT)     # gunicorn's quick shutdown
            proc.wait(30)


@pytest.fixture
def receiver(tmp_path):
    """A Server whose receiver runs under gunicorn; (server, base URL)."""
    srv = Server(tmp_path / "srv", "sqlite")
    with running_receiver(srv, tmp_path / "receiver.log") as base:
        yield srv, base


# -- reports -------------------------------------------------------------------

def make_report(host_id=None, frameworks=(("django", "4.2.11", "deb"),),
                pythons=("3.11",), virt="none", age="25+", vendor="Debian",
                release="12", used=True, date="2026-11-28"):
    """A valid format-1 report as bytes."""
    return report.serialise(report.Report(
        host_id=host_id or str(uuid.uuid4()), date=date, client="0.1.0",
        os=report.OS(vendor, release, "amd64"), virt=virt, age=age,
        pythons=tuple(pythons),
        frameworks=tuple(report.Entry(n, v, via, 1, used)
                         for n, v, via in frameworks)))


def make_forget(host_id):
    return report.serialise(report.Forget(host_id))

