"""PostgreSQL's password never sits in a world-readable file: it comes from
DATABASE_PASSWORD_FILE (a file others cannot read) or from the systemd
credential database-password, and `config` never prints one.  Against the
real throw-away PostgreSQL, with a role that must give its password."""

import os
import subprocess
import sys

import pytest

from pyweb_popcon.server.store import Store, StoreError
from server_fixtures import (ENV, PYTHON, Server, encryptor, make_report,
                             password_database)

PASSWORD = "correct horse battery staple"


def server(tmp_path, url, **keys):
    srv = Server(tmp_path / "srv", "postgresql", database=url)
    with open(srv.conf, "a") as f:
        for key, value in keys.items():
            f.write(f'{key}="{value}"\n')
    return srv


def secret(path, text=PASSWORD, mode=0o600):
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    return str(path)


def run(srv, *args, env=None):
    return subprocess.run([PYTHON, "-m", "pyweb_popcon.server", "--config",
                           srv.conf, *args], env=dict(ENV, **(env or {})),
                          capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def url():
    return password_database(PASSWORD)


def test_password_from_a_private_file(tmp_path, url):
    srv = server(tmp_path, url,
                 DATABASE_PASSWORD_FILE=secret(tmp_path / "pw", mode=0o640))
    srv.drop(encryptor().encrypt(make_report()))
    done = run(srv, "ingest")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 ingested")
    assert run(srv, "stats").returncode == 0


def test_without_the_password_it_says_so(tmp_path, url):
    done = run(server(tmp_path, url), "stats")
    assert done.returncode == os.EX_UNAVAILABLE
    assert "cannot connect to PostgreSQL" in done.stderr
    assert "password" in done.stderr


def test_a_wrong_password_is_not_shown(tmp_path, url):
    srv = server(tmp_path, url, DATABASE_PASSWORD_FILE=secret(
        tmp_path / "pw", "not the password"))
    done = run(srv, "stats")
    assert done.returncode == os.EX_UNAVAILABLE
    assert "password authentication failed" in done.stderr
    assert "not the password" not in done.stdout + done.stderr


def test_a_world_readable_password_file_is_refused(tmp_path, url):
    path = secret(tmp_path / "pw", mode=0o644)
    done = run(server(tmp_path, url, DATABASE_PASSWORD_FILE=path), "stats")
    assert done.returncode == os.EX_CONFIG
    assert f"DATABASE_PASSWORD_FILE {path} is readable by everyone" \
        in done.stderr
    missing = str(tmp_path / "missing")
    done = run(server(tmp_path / "2", url, DATABASE_PASSWORD_FILE=missing),
               "stats")
    assert done.returncode == os.EX_CONFIG
    assert f"DATABASE_PASSWORD_FILE {missing}: No such file" in done.stderr


def test_password_from_a_systemd_credential(tmp_path, url):
    """As LoadCredential=database-password:FILE passes it; it wins over
    DATABASE_PASSWORD_FILE (which, root's alone, the unit cannot read)."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    secret(credentials / "database-password", mode=0o400)
    srv = server(tmp_path, url, DATABASE_PASSWORD_FILE=secret(
        tmp_path / "pw", "stale"))
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    done = run(srv, "stats", env=env)
    assert done.returncode == 0, done.stderr
    assert run(srv, "stats").returncode == os.EX_UNAVAILABLE   # "stale"


def test_config_never_prints_a_password(tmp_path, url):
    for embedded in (url.replace("@", f":{PASSWORD.replace(' ', '%20')}@"),
                     url + f"&password={PASSWORD.replace(' ', '%20')}"):
        srv = server(tmp_path / str(len(embedded)), embedded)
        assert run(srv, "stats").returncode == 0    # the URL's password
        done = run(srv, "config")
        assert done.returncode == 0, done.stderr
        assert "correct" not in done.stdout and "********" in done.stdout
    srv = server(tmp_path / "file", url,
                 DATABASE_PASSWORD_FILE=secret(tmp_path / "pw"))
    done = run(srv, "config")
    assert f'DATABASE_PASSWORD_FILE="{tmp_path}/pw"' in done.stdout
    assert "correct" not in done.stdout


def test_without_psycopg_it_says_what_to_install(monkeypatch):
    """A server-only install has no python3-psycopg unless asked for."""
    monkeypatch.setitem(sys.modules, "psycopg", None)   # not installed
    with pytest.raises(StoreError, match="install python3-psycopg"):
        Store("postgresql:///popcon")
