"""Hostile submissions against ingest with real gpg: one submission, one
fate.  Whatever a submission is (hostile OpenPGP, hostile plaintext, an
odd name, not a file at all), one run stores it or quarantines it with a
one-line reason, and the other submissions go through; a gpg that hangs
or is killed leaves only its own batch, for the next run."""

import json
import os
import random
import shutil
import socket
import stat
import subprocess
import textwrap
import time
import uuid

import pytest

from hostile import RAW_VALUES, document_with, paths
from hostile_openpgp import GOOD, OPENPGP, gpg, symmetric
from pyweb_popcon import report
from pyweb_popcon.server.publish import rule
from server_fixtures import (ENV, PYTHON, Server, backend,  # noqa: F401
                             dump, encryptor, make_report, server)


def ingest(srv, *args, env=None, check=True):
    proc = subprocess.run([PYTHON, "-m", "pyweb_popcon.server", "--config",
                           srv.conf, "ingest", *args], env=env or ENV,
                          capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def reasons(srv):
    """{quarantined name: its .reason line}, each checked to be one line
    of printable UTF-8 text of at most 500 characters."""
    out = {}
    for name in os.listdir(srv.quarantine):
        if name.endswith(".reason"):
            with open(os.path.join(srv.quarantine, name), "rb") as f:
                data = f.read()
            text = data.decode("utf-8")     # strict: no lone surrogates
            assert text.endswith("\n") and text.count("\n") == 1, data
            line = text[:-1]
            assert line.isprintable() and len(line) <= 500, data
            out[name[:-len(".reason")]] = line
    return out


@pytest.fixture
def srv(tmp_path):
    return Server(tmp_path / "srv", "sqlite")


@pytest.mark.parametrize("kind", sorted(OPENPGP))
def test_hostile_openpgp(srv, kind):
    reason, make = OPENPGP[kind]
    srv.drop(make(), name="hostile")
    # Before and after it in the same batch: both stored.
    srv.drop(encryptor().encrypt(make_report()), name="a-good")
    srv.drop(encryptor().encrypt(make_report()), name="z-good")
    out = ingest(srv, "--workers", "1").stdout
    assert out.startswith("2 ingested"), out
    assert reasons(srv)["hostile"].startswith(reason + ": ")
    assert os.listdir(srv.incoming) == []
    with srv.store() as store:
        assert rule.folded(store, 1)["hosts"] == 2


def test_symmetric_made_by_hand_is_a_real_message(tmp_path):
    """What makes the "symmetric-empty" case mean something."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    try:
        assert gpg(str(home), "--passphrase", "secret", "--decrypt",
                   data=symmetric(GOOD, b"secret")) == GOOD
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill",
                        "gpg-agent"], check=True)


def test_crash_inputs_of_issue_9(srv):
    """The three plaintexts that stopped ingest for good."""
    plain = {"brackets": b"[" * 60_000,
             "digits": b'{"format": 1, "n": ' + b"9" * 5000 + b"}",
             "surrogate": b'{"\\ud800": 1}',
             "escape": b'{"\\u001b[31m": 1}'}
    for name, data in zip(plain, encryptor().encrypt_many(list(
            plain.values()))):
        srv.drop(data, name=name)
    out = ingest(srv).stdout
    assert out.strip().endswith("4 quarantined (2 invalid-json, "
                                "2 invalid-report)")
    assert reasons(srv) == {
        "brackets": "invalid-json: document: nested 60000 levels deep, "
                    "more than the 16 read",
        "digits": "invalid-json: document: a number of 5000 digits, more "
                  "than the 20 read",
        "surrogate": "invalid-report: '\\ud800': unknown key",
        "escape": "invalid-report: '\\x1b[31m': unknown key"}


ODD_NAMES = ["-o", "--output=x", "--decrypt-files", "a name with spaces",
             "ünïcödé", "tab\there", "new\nline", "\x1b[31mred",
             os.fsdecode(b"undecodable-\xff\xfe"), "x" * 200,
             "y" * 250, "z" * 240 + ".reason", "ends.asc"]


def test_odd_spool_names(server):  # noqa: F811
    """Names a client never chooses (the receiver makes them), but a
    spool may hold: each stored or quarantined like any other."""
    enc = encryptor()
    hosts = [str(uuid.uuid4()) for _ in ODD_NAMES]
    ciphertexts = enc.encrypt_many([make_report(h) for h in hosts])
    for name, data in zip(ODD_NAMES, ciphertexts):
        server.drop(data, name=name)
    out = ingest(server).stdout
    assert out.startswith(f"{len(ODD_NAMES)} ingested"), out
    assert server.incoming_files() == []
    with server.store() as store:
        assert {r[0] for r in store.query("SELECT host_id FROM hosts")} == \
            set(hosts)
    for name in ODD_NAMES:
        server.drop(b"garbage", name=name)
    out = ingest(server).stdout
    assert out.strip().endswith(f"{len(ODD_NAMES)} quarantined "
                                f"({len(ODD_NAMES)} not-openpgp)"), out
    assert os.listdir(server.incoming) == []
    kept = reasons(server)
    assert len(kept) == len(ODD_NAMES)
    for name in ODD_NAMES:
        if len(os.fsencode(name)) <= 248 and not name.endswith(".reason"):
            assert kept[name] == "not-openpgp: no OpenPGP data in it"
    renamed = {k: v for k, v in kept.items() if k.startswith("renamed-")}
    assert sorted(v.split("in incoming/ as ")[1] for v in renamed.values()) \
        == sorted(repr(n) for n in ("y" * 250, "z" * 240 + ".reason"))
    # Again, under the same names: nothing already quarantined is replaced.
    for name in ODD_NAMES[:3]:
        server.drop(b"garbage again", name=name)
    ingest(server)
    assert len(reasons(server)) == len(ODD_NAMES) + 3


def test_an_entry_that_cannot_be_moved_stops_no_other(srv):
    """A directory no one may rename (immutable here; for the ingest user,
    one the receiver's user made): it stays, said so, and the other
    submissions are placed all the same."""
    if not shutil.which("chattr"):
        pytest.skip("chattr is not installed (e2fsprogs: make deps installs "
                    "it)")
    stuck = os.path.join(srv.incoming, "stuck")
    os.mkdir(stuck)
    subprocess.run(["chattr", "+i", stuck], check=True)
    try:
        good = srv.drop(encryptor().encrypt(make_report()))
        srv.drop(b"garbage")
        done = ingest(srv, check=False)
    finally:
        subprocess.run(["chattr", "-i", stuck], check=True)
    assert done.returncode == 75, done.stderr
    assert done.stdout.strip() == (
        "1 ingested, 0 replaced, 0 forgotten, 0 outdated, 1 quarantined "
        "(1 not-openpgp), 1 left in incoming/ (the journal says why)")
    assert "cannot move 'stuck' to quarantine/ (not-a-file): Operation " \
        "not permitted" in done.stderr
    assert os.listdir(srv.incoming) == ["stuck"] and good not in \
        os.listdir(srv.quarantine)
    assert "stuck.reason" not in os.listdir(srv.quarantine)


def test_entries_that_are_not_files(srv, tmp_path):
    """A path unit triggers while incoming/ is not empty: ingest leaves
    nothing there but the receiver's files being written."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(encryptor().encrypt(make_report()))
    incoming = srv.incoming
    os.mkdir(os.path.join(incoming, "a-directory"))
    with open(os.path.join(incoming, "a-directory", "inside"), "wb") as f:
        f.write(encryptor().encrypt(make_report()))
    os.mkdir(os.path.join(incoming, ".dot-directory"))
    os.symlink(outside / "secret", os.path.join(incoming, "a-link"))
    os.symlink(outside / "nowhere", os.path.join(incoming, "dangling"))
    os.symlink(outside, os.path.join(incoming, "link-to-a-directory"))
    os.mkfifo(os.path.join(incoming, "a-fifo"))
    here = os.getcwd()
    os.chdir(incoming)              # a socket's path must be short
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind("a-socket")
    finally:
        os.chdir(here)
    os.mknod(os.path.join(incoming, "a-device"), stat.S_IFCHR | 0o600,
             os.makedev(1, 3))      # as root, as make test runs
    srv.drop(b"being written", name=".tmp-receiving")
    good = srv.drop(encryptor().encrypt(make_report()))
    out = ingest(srv).stdout
    assert out.startswith("1 ingested"), out
    assert out.strip().endswith("8 quarantined (8 not-a-file)")
    assert os.listdir(incoming) == [".tmp-receiving"]
    assert {n: r.split(",")[0] for n, r in reasons(srv).items()} == {
        "a-directory": "not-a-file: a directory",
        ".dot-directory": "not-a-file: a directory",
        "a-link": "not-a-file: a symbolic link",
        "dangling": "not-a-file: a symbolic link",
        "link-to-a-directory": "not-a-file: a symbolic link",
        "a-fifo": "not-a-file: a FIFO",
        "a-socket": "not-a-file: a socket",
        "a-device": "not-a-file: a character device"}
    # Moved as they are, never followed: the link's target is untouched
    # and was not ingested; the directory still holds its file.
    assert os.readlink(os.path.join(srv.quarantine, "a-link")) == str(
        outside / "secret")
    assert os.listdir(outside) == ["secret"]
    assert os.listdir(os.path.join(srv.quarantine, "a-directory")) == [
        "inside"]
    assert good not in os.listdir(incoming)
    with srv.store() as store:
        assert rule.folded(store, 1)["hosts"] == 1


# -- gpg that hangs or dies --------------------------------------------------

# Stands in for a gpg that hangs or is killed (what cannot be made to happen
# to the real one on demand): for batches holding a file named "hang..." or
# "die...", it sleeps, or decrypts half the batch with the real gpg and is
# killed.  Everything else goes to the real gpg.
SHIM = textwrap.dedent("""\
    #!/usr/bin/python3
    import os, signal, subprocess, sys, time
    args = sys.argv[1:]
    if "--decrypt-files" in args:
        at = args.index("--decrypt-files") + 1
        names = [os.path.basename(os.readlink(f)) for f in args[at:]]
        with open(os.path.join(os.path.dirname(__file__), "pids"), "a") as f:
            f.write(f"{os.getpid()}\\n")
        if any(n.startswith("hang") for n in names):
            print(f"[GNUPG:] FILE_START 3 {args[at]}", flush=True)
            time.sleep(3600)
        if any(n.startswith("die") for n in names):
            subprocess.run(["/usr/bin/gpg", *args[:at + len(names) // 2]])
            os.kill(os.getpid(), signal.SIGKILL)
    os.execv("/usr/bin/gpg", ["gpg", *args])
    """)


@pytest.fixture
def shim(tmp_path):
    """An environment whose `gpg` is SHIM; its directory."""
    directory = tmp_path / "shim"
    directory.mkdir()
    (directory / "gpg").write_text(SHIM)
    (directory / "gpg").chmod(0o755)
    return dict(ENV, PATH=f"{directory}:{ENV['PATH']}"), directory


@pytest.mark.parametrize("kind,why", ids=["hang", "die"], argvalues=[
    ("hang", "did not finish in 3 s and was killed while on 'hang-0', "
             "after finishing 0 of 5 files"),
    ("die", "was killed by SIGKILL, after finishing 2 of 5 files")])
def test_gpg_that_hangs_or_dies(srv, shim, kind, why):
    env, directory = shim
    with open(srv.conf, "a") as f:
        f.write('GPG_TIMEOUT="3"\n')
    hosts = [str(uuid.uuid4()) for _ in range(10)]
    names = [f"{kind}-{i}" for i in range(5)] + [f"ok-{i}" for i in range(5)]
    for name, data in zip(names, encryptor().encrypt_many(
            [make_report(h) for h in hosts])):
        srv.drop(data, name=name)
    start = time.monotonic()
    done = ingest(srv, "--workers", "2", env=env, check=False)
    assert time.monotonic() - start < 60
    assert done.returncode == 75, done.stderr
    assert done.stdout.strip() == (
        "5 ingested, 0 replaced, 0 forgotten, 0 outdated, 0 quarantined, "
        "5 left in incoming/ (the journal says why)")
    assert f"gpg --decrypt-files {why}" in done.stderr
    assert "its batch of 5 files stays in incoming/ for the next run" in \
        done.stderr
    # Nothing of the failed batch is stored or quarantined, not even what
    # gpg had finished; and what the shim started is gone.
    assert srv.incoming_files() == names[:5]
    assert not os.path.exists(srv.quarantine) or \
        os.listdir(srv.quarantine) == []
    with srv.store() as store:
        assert {r[0] for r in store.query("SELECT host_id FROM hosts")} == \
            set(hosts[5:])
    for pid in (directory / "pids").read_text().split():
        assert not os.path.exists(f"/proc/{pid}")
    # The next run, with a gpg that works, places the rest.
    assert ingest(srv).stdout.startswith("5 ingested")
    assert srv.incoming_files() == []


def test_gpg_hanging_on_the_key_listing(srv, tmp_path):
    """Even the key check before ingest cannot hang."""
    directory = tmp_path / "hang"
    directory.mkdir()
    (directory / "gpg").write_text("#!/bin/sh\nexec sleep 3600\n")
    (directory / "gpg").chmod(0o755)
    srv.drop(encryptor().encrypt(make_report()), name="kept")
    env = dict(ENV, PATH=f"{directory}:{ENV['PATH']}")
    code = ("import sys; from pyweb_popcon.server.admin import cli; from pyweb_popcon.server.keyholder import gpg; "
            "gpg.KEY_TIMEOUT = 2; sys.exit(cli.main(sys.argv[1:]))")
    done = subprocess.run([PYTHON, "-c", code, "--config", srv.conf,
                           "ingest"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 69, done.stderr
    assert "gpg --list-secret-keys did not finish in 2 s and was killed" \
        in done.stderr
    assert srv.incoming_files() == ["kept"]


# -- a few hundred hostile submissions at once -------------------------------

def hostile_plaintexts(rng):
    """(plaintext, the reasons it may get) of every hostile kind."""
    base = json.loads(make_report("6a1f3e2d-4c5b-4a69-8877-665544332211"))
    fields = list(paths(base))
    out = [(b"[" * 60_000, {"invalid-json"}),
           (b'{"format": 1, "n": ' + b"9" * 5000 + b"}", {"invalid-json"}),
           (b'{"\\ud800": 1}', {"invalid-report"}),
           (b"", {"invalid-json"}),
           (b"\xef\xbb\xbf{}", {"invalid-json"}),
           (b"{" * 100 + b"}" * 100, {"invalid-json"}),
           (b" " * 70_000, {"too-large"}),
           (encryptor().encrypt(GOOD), {"nested"})]
    for _ in range(60):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        # A first byte like a session-key packet's reads as a message.
        out.append((data, {"invalid-json", "invalid-report", "nested"}))
    for _ in range(140):
        data = document_with(base, rng.choice(fields),
                             rng.choice(RAW_VALUES + [None])).encode()
        try:
            report.parse(data)
            continue    # still valid: no frameworks, used null, ...
        except report.ReportError:
            out.append((data, {"too-large"} if len(data) > report.MAX_BYTES
                        else {"invalid-json", "invalid-report"}))
    return out


def test_hundreds_of_hostile_submissions_one_run(srv):
    rng = random.Random(9)
    plain = hostile_plaintexts(rng)
    hosts = [str(uuid.uuid4()) for _ in range(120)]
    plain += [(make_report(h), None) for h in hosts]
    ciphertexts = encryptor().encrypt_many([p for p, _ in plain])
    submissions = [(c, why) for c, (_, why) in zip(ciphertexts, plain)]
    submissions += [(make(), {reason}) for reason, make in OPENPGP.values()
                    for _ in range(3)]
    rng.shuffle(submissions)
    expected = {}
    for data, why in submissions:
        name = srv.drop(data)
        if why:
            expected[name] = why
    first = ingest(srv)
    hostile = len(expected)
    assert first.stdout.startswith(f"{len(hosts)} ingested, 0 replaced"), \
        first.stdout
    assert f"{hostile} quarantined (" in first.stdout
    assert os.listdir(srv.incoming) == []
    got = reasons(srv)
    assert set(got) == set(expected)
    for name, line in got.items():
        assert line.split(":")[0] in expected[name], (name, line)
    with srv.store() as store:
        assert {r[0] for r in store.query("SELECT host_id FROM hosts")} == \
            set(hosts)
        before = dump(store)
    second = ingest(srv)
    assert second.stdout.strip() == ("0 ingested, 0 replaced, 0 forgotten, "
                                     "0 outdated, 0 quarantined")
    assert reasons(srv) == got
    with srv.store() as store:
        assert dump(store) == before
