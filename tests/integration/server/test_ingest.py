"""Ingest with real gpg, on SQLite and on a real PostgreSQL."""

import json
import os
import random
import shutil
import signal
import subprocess
import time
import uuid

from pyweb_popcon.server.publish import rule
from server_fixtures import (ENV, PYTHON, Server, backend,  # noqa: F401
                             dump, encryptor, make_forget, make_report, server,
                             stranger)

T0 = time.time() - 3600
HOUR = 3600


def ingest(srv, *args):
    out = srv.run("ingest", *args).stdout
    return out


def test_every_quarantine_reason(server):  # noqa: F811
    enc = encryptor()
    good = make_report()
    unknown_key = json.loads(good)
    unknown_key["hostname"] = "secret"
    huge = b'{"format": 1, "pad": "' + b"x" * 70000 + b'"}'
    cases = {
        "garbage": ("not-openpgp", b"not openpgp at all\n"),
        "truncated": ("undecryptable", enc.encrypt(good)[:200]),
        "unencrypted": ("not-encrypted", subprocess.run(
            ["gpg", "--homedir", enc.home, "--batch", "--armor", "--store"],
            input=good, capture_output=True, check=True).stdout),
        "stranger": ("wrong-key", stranger().encrypt(good)),
        "notjson": ("invalid-json", enc.encrypt(b"{not json")),
        "latin1": ("invalid-json", enc.encrypt('{"é": 1}'.encode("latin-1"))),
        "unknownkey": ("invalid-report",
                       enc.encrypt(json.dumps(unknown_key).encode())),
        "huge": ("too-large", enc.encrypt(huge)),
        "adirectory": ("not-a-file", None),
    }
    for name, (_, data) in cases.items():
        if data is not None:
            server.drop(data, name=name)
    ok = server.drop(enc.encrypt(good))
    server.drop(b"half written", name=".tmp-receiving")
    os.mkdir(os.path.join(server.incoming, "adirectory"))
    out = ingest(server)
    assert out.strip() == (
        "1 ingested, 0 replaced, 0 forgotten, 0 outdated, 9 quarantined "
        "(1 not-a-file, 1 not-openpgp, 1 not-encrypted, 1 wrong-key, "
        "1 undecryptable, 1 too-large, 2 invalid-json, 1 invalid-report)")
    assert server.quarantined() == {n: r for n, (r, _) in cases.items()}
    for name, (_, data) in cases.items():
        if data is not None:
            with open(os.path.join(server.quarantine, name), "rb") as f:
                assert f.read() == data
    assert os.path.isdir(os.path.join(server.quarantine, "adirectory"))
    with open(os.path.join(server.quarantine, "unknownkey.reason")) as f:
        reason = f.read()
    assert reason.startswith("invalid-report: ") and "hostname" in reason
    assert ok not in os.listdir(server.incoming)
    assert os.listdir(server.incoming) == [".tmp-receiving"]
    with server.store() as store:
        assert rule.folded(store, 1)["hosts"] == 1


def test_without_the_key_ingest_refuses_and_keeps_the_spool(server):  # noqa: F811,E501
    shutil.rmtree(server.gnupg_home)
    name = server.drop(encryptor().encrypt(make_report()))
    done = server.run("ingest", check=False)
    assert done.returncode == 78
    assert f"no secret key in {server.gnupg_home}" in done.stderr
    assert server.incoming_files() == [name]
    assert server.quarantined() == {}


def test_replacement_by_receive_time_and_forget(server):  # noqa: F811
    enc = encryptor()
    host = str(uuid.uuid4())
    old = make_report(host, frameworks=[("django", "3.2.25", "pip")])
    new = make_report(host, frameworks=[("django", "4.2.11", "deb")])
    # The newer report is in the spool first and has the earlier name;
    # received an hour later (the server's clock keeps hours).
    server.drop(enc.encrypt(new), received=T0 + HOUR, name="a")
    server.drop(enc.encrypt(old), received=T0, name="b")
    assert ingest(server).startswith("1 ingested, 0 replaced, 0 forgotten, "
                                     "1 outdated")
    with server.store() as store:
        assert store.query("SELECT version, via FROM host_frameworks") == [
            ("4.2.11", "deb")]
    newest = make_report(host, frameworks=[("flask", "3.0.3", "venv")])
    server.drop(enc.encrypt(newest), received=T0 + 2 * HOUR)
    assert ingest(server).startswith("1 ingested, 1 replaced")
    server.drop(enc.encrypt(make_forget(host)), received=T0 + 3 * HOUR)
    assert ingest(server).startswith("0 ingested, 0 replaced, 1 forgotten")
    with server.store() as store:
        assert rule.folded(store, 1)["hosts"] == 0
        assert store.query("SELECT COUNT(*) FROM host_frameworks") == [(0,)]


def spool_of(srv, n, seed=1):
    """`n` encrypted submissions, some replacing others, some bad."""
    rng = random.Random(seed)
    hosts = [str(uuid.uuid4()) for _ in range(n // 3)]
    fws = [("django", "4.2.11", "deb"), ("flask", "3.0.3", "venv"),
           ("fastapi", "0.110.0", "pip"), ("django", "5.0.6", "pip")]
    plain = []
    for i in range(n):
        if i % 17 == 0:
            plain.append(b"{broken")
        elif i % 23 == 0:
            plain.append(make_forget(rng.choice(hosts)))
        else:
            plain.append(make_report(rng.choice(hosts),
                                     frameworks=rng.sample(fws, 2)))
    for i, data in enumerate(encryptor().encrypt_many(plain)):
        srv.drop(data, received=T0 + rng.randrange(600), name=f"s{i:05d}")


def snapshot(srv):
    with srv.store() as store:
        db = dump(store)
    return db, srv.quarantined(), srv.incoming_files()


def clone(srv, top, backend):  # noqa: F811
    """A second server with the same spool (same names and times)."""
    other = Server(top, backend)
    shutil.rmtree(other.spool)
    shutil.copytree(srv.spool, other.spool)
    return other


def test_two_ingests_on_one_spool_at_once(server, tmp_path, backend):  # noqa: F811
    spool_of(server, 300)
    reference = clone(server, tmp_path / "ref", backend)
    ingest(reference)
    procs = [subprocess.Popen([PYTHON, "-m", "pyweb_popcon.server", "--config",
                               server.conf, "ingest"], env=ENV,
                              stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert snapshot(server) == snapshot(reference)
    # Everything was done once: one run did it all, the other found nothing.
    assert sorted(o.split(",")[0] for o in outs)[0] == "0 ingested"


def test_two_machines_one_database(server, tmp_path, backend):  # noqa: F811
    """Two spools (two receivers) ingested at once into one database."""
    spool_of(server, 300)
    reference = clone(server, tmp_path / "ref", backend)
    ingest(reference)
    second = Server(tmp_path / "second", backend,
                    database=server.database_url)
    for name in server.incoming_files()[::2]:
        os.rename(os.path.join(server.incoming, name),
                  os.path.join(second.incoming, name))
    procs = [subprocess.Popen([PYTHON, "-m", "pyweb_popcon.server", "--config",
                               s.conf, "ingest"], env=ENV,
                              stdout=subprocess.DEVNULL) for s in (server,
                                                                   second)]
    assert [p.wait(300) for p in procs] == [0, 0]
    with server.store() as store:
        together = dump(store)
    with reference.store() as store:
        assert together == dump(store)
    assert dict(server.quarantined(), **second.quarantined()) == \
        reference.quarantined()


def test_crash_at_any_point_then_rerun_equals_clean_run(server, tmp_path,
                                                        backend):  # noqa: F811
    spool_of(server, 400, seed=7)
    reference = clone(server, tmp_path / "ref", backend)
    start = time.monotonic()
    ingest(reference)
    clean = time.monotonic() - start
    expected = snapshot(reference)
    rng = random.Random(42)
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen([PYTHON, "-m", "pyweb_popcon.server",
                                 "--config", server.conf, "ingest"], env=ENV,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, clean))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if not server.incoming_files():
            break
    assert kills >= 3, "no run was killed part-way: make the spool larger"
    ingest(server)
    assert snapshot(server) == expected
