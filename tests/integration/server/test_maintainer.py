"""The commands a maintainer reaches for: status, requeue, keygen --rotate,
replaying days with --as-of, and progress bars on a terminal only.

Real gpg, the real receiver (gunicorn) and ingest, and the real client on
fake machines.
"""

import datetime
import json
import os
import pty
import subprocess
import time

import pytest

from fakemachine import CONSENT, FakeMachine
from server_fixtures import (ENV, PYTHON, Encryptor, Server, _keygen,  # noqa: F401,E501
                             backend, encryptor, make_report,
                             running_receiver, server)

DAY = 86_400
KEYRING = "/etc/pyweb-popcon/server-keys.asc"


def gpg(home, *args, **kw):
    """gpg on a server's key as a maintainer would, leaving no agent."""
    try:
        subprocess.run(["gpg", "--homedir", home, "--batch", *args],
                       check=True, capture_output=True, **kw)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"],
                       check=False)


def status(srv):
    done = srv.run("status", check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, done.stdout


def test_status_on_a_healthy_server(server):  # noqa: F811
    for i in range(5):
        server.drop(encryptor().encrypt(make_report()))
    server.drop(b"not even OpenPGP")
    for command in ("ingest", "expire", "aggregate"):
        server.run(command)
    code, out = status(server)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "Incoming: empty"
    assert lines[1].startswith("Quarantine: 1 submissions (1 not-openpgp)")
    assert lines[2].startswith("Last ingest: ") and ", ok (5 ingested" in \
        lines[2]
    assert ", ok (0 hosts and 0 quarantined" in lines[3]
    assert ", ok (5 hosts on " in lines[4]
    assert lines[5].startswith("Hosts: 5 in the store, ")
    assert f"  {server.fingerprint} current, does not expire" in lines
    assert lines[-1] == "Needs attention: nothing"


def test_status_says_what_needs_attention(tmp_path):
    srv = Server(tmp_path / "srv", "sqlite")
    srv.drop(encryptor().encrypt(make_report()),
             received=time.time() - 2 * DAY)
    code, out = status(srv)
    assert code == 1
    assert "Incoming: 1 submissions waiting, the oldest received" in out
    assert "(2 days ago)" in out
    assert "Needs attention: a submission has waited in incoming/ for over " \
        "a day" in out
    srv.run("ingest")
    assert srv.run("aggregate", "--no-publish").stdout.endswith(
        " hosts on {}, every figure withheld; nothing recorded\n".format(
            datetime.date.today()))
    # A failed run: aggregate cannot write where OUTPUT_DIR is a file.
    os.rmdir(srv.output)
    open(srv.output, "w").close()
    assert srv.run("aggregate", check=False).returncode != 0
    # A killed run: its record says running, its process is gone.
    gone = subprocess.Popen(["true"])
    gone.wait()
    with open(f"{srv.state}/runs/expire.json", "w") as f:
        json.dump({"command": "expire", "started": "2026-11-28T10:00:00+00:00",
                   "pid": gone.pid, "outcome": "running"}, f)
    # The key clients encrypt to expires in 10 days.
    gpg(srv.gnupg_home, "--quick-set-expire", srv.fingerprint, "10d")
    code, out = status(srv)
    assert code == 1
    attention = [line for line in out.splitlines()
                 if line.startswith("Needs attention: ")]
    assert attention == [
        "Needs attention: the last expire killed (did not finish): "
        "journalctl -t pyweb-popcon-server",
        "Needs attention: the last aggregate failed: journalctl -t "
        "pyweb-popcon-server",
        f"Needs attention: the current key {srv.fingerprint} expires within "
        "30 days: pyweb-popcon-server keygen --rotate"]
    assert "Last aggregate: " in out and ", failed (" in out


def test_requeue_after_a_key_is_imported(tmp_path):
    """Submissions to a key the server did not have go to quarantine; with
    the key imported, requeue brings them back with their receive times."""
    srv = Server(tmp_path / "srv", "sqlite")
    home, fpr, public = _keygen("ppc-other-key-")
    old = Encryptor(public, fpr)
    sent = {}
    for i in range(3):
        host = f"00000000-0000-4000-8000-00000000000{i}"
        # On the hour: the server keeps receive times to the hour.
        received = time.time() // 3600 * 3600 - (i + 1) * 3600
        sent[srv.drop(old.encrypt(make_report(host_id=host)),
                      received=received)] = (host, received)
    garbage = srv.drop(b"-----BEGIN PGP MESSAGE-----\n\nAAAA\n")
    assert srv.run("ingest").stdout.endswith(
        "4 quarantined (1 not-openpgp, 3 wrong-key)\n")
    # The maintainer imports the key those clients used.
    secret = subprocess.run(["gpg", "--homedir", home, "--batch", "--armor",
                             "--export-secret-keys"], capture_output=True,
                            check=True).stdout
    gpg(srv.gnupg_home, "--import", input=secret)
    done = srv.run("requeue", "--reason", "wrong-key")
    assert done.stdout == ("3 quarantined submissions moved back into "
                           "incoming/ (reason wrong-key)\n")
    assert sorted(srv.incoming_files()) == sorted(sent)
    for name, (_, received) in sent.items():
        assert os.stat(f"{srv.incoming}/{name}").st_mtime == \
            pytest.approx(received, abs=1)
        assert not os.path.exists(f"{srv.quarantine}/{name}.reason")
    assert srv.quarantined() == {garbage: "not-openpgp"}
    assert srv.run("ingest").stdout.startswith("3 ingested")
    with srv.store() as store:
        stored = dict(store.query("SELECT host_id, received FROM hosts"))
    assert stored == {host: int(received * 1e9)
                      for host, received in sent.values()}
    assert srv.run("requeue").stdout.startswith("1 quarantined")


def test_entries_that_are_not_files_are_seen_requeued_and_expired(
        tmp_path):
    """What ingest quarantines as it is (a directory, links, a FIFO) is a
    quarantined submission like any other: status counts it, requeue
    moves it back whole, and expire deletes it with its .reason, never
    following a link, neither the entry nor one inside a directory."""
    srv = Server(tmp_path / "srv", "sqlite")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("not the spool's")
    directory = os.path.join(srv.incoming, "a-directory")
    os.mkdir(directory)
    with open(os.path.join(directory, "inside"), "wb") as f:
        f.write(b"whatever")
    os.symlink(outside, os.path.join(directory, "link-out"))
    os.symlink(outside, os.path.join(srv.incoming, "link-to-a-directory"))
    os.mkfifo(os.path.join(srv.incoming, ".a-fifo"))
    srv.drop(b"not even OpenPGP", name="garbage")
    assert srv.run("ingest").stdout.endswith(
        "4 quarantined (3 not-a-file, 1 not-openpgp)\n")
    lines = status(srv)[1].splitlines()
    assert lines[1] == ("Quarantine: 4 submissions (3 not-a-file, 1 "
                        "not-openpgp); after a fix, pyweb-popcon-server "
                        "requeue [--reason R]")
    done = srv.run("requeue", "--reason", "not-a-file")
    assert done.stdout == ("3 quarantined submissions moved back into "
                           "incoming/ (reason not-a-file)\n")
    assert sorted(os.listdir(srv.incoming)) == [
        ".a-fifo", "a-directory", "link-to-a-directory"]
    assert sorted(os.listdir(directory)) == ["inside", "link-out"]
    assert sorted(os.listdir(srv.quarantine)) == ["garbage",
                                                  "garbage.reason"]
    assert srv.run("ingest").stdout.endswith(
        "3 quarantined (3 not-a-file)\n")
    in_20 = (datetime.date.today()
             + datetime.timedelta(days=20)).isoformat()
    assert srv.run("expire", "--as-of", in_20).stdout == (
        "0 hosts and 4 quarantined submissions older than 20 days "
        "deleted\n")
    assert os.listdir(srv.quarantine) == []
    assert status(srv)[1].splitlines()[1] == "Quarantine: empty"
    assert os.listdir(outside) == ["precious"]
    assert (outside / "precious").read_text() == "not the spool's"


# -- key rotation ---------------------------------------------------------

WINDOW = 25     # seconds the old key stays valid once the switch is near


def client(top, base, keyring, fingerprints):
    machine = FakeMachine(top)
    machine.file(KEYRING, keyring)
    machine.config(f'PARTICIPATE="yes"\nSUBMIT_URL="{base}/submit"\n'
                   f'KEYRING="{KEYRING}"\nKEY_FINGERPRINTS="{fingerprints}"\n'
                   + CONSENT)
    return machine


def submit(machine):
    env = {k: v for k, v in ENV.items() if not k.lower().endswith("_proxy")}
    done = subprocess.run([PYTHON, "-m", "pyweb_popcon.client", "--root",
                           machine.top, "submit", "--force"], env=env,
                          capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    return done.returncode, done.stderr


def recipients(srv, tmp_path):
    """How many keys each waiting submission is encrypted to."""
    home = tmp_path / "list-packets"
    home.mkdir(mode=0o700, exist_ok=True)
    counts = []
    for name in srv.incoming_files():
        listing = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--list-packets",
             f"{srv.incoming}/{name}"], capture_output=True, text=True)
        counts.append(listing.stdout.count(":pubkey enc packet:"))
    return sorted(counts)


def test_rotation_needs_no_flag_day(tmp_path):
    srv = Server(tmp_path / "srv", "sqlite")
    old_key = srv.public_key.decode()
    a = srv.fingerprint
    exported = tmp_path / "server-keys.asc"
    made = srv.run("keygen", "--rotate", "--switch-in", "30", "--export",
                   str(exported)).stdout.split()
    assert made[0] == a and len(made) == 2
    b = made[1]
    # The switch comes sooner than 30 days here: in WINDOW seconds.
    for which in ((), ("*",)):
        gpg(srv.gnupg_home, "--quick-set-expire", a, f"seconds={WINDOW}",
            *which)
    switch = time.monotonic() + WINDOW
    assert srv.run("keygen", "--export", str(exported)).stdout.split() == \
        [a, b]
    with running_receiver(srv, tmp_path / "receiver.log") as base:
        # A client that pinned both keys, and one that never updated.
        both = client(tmp_path / "both", base, exported.read_text(),
                      f"{a} {b}")
        behind = client(tmp_path / "behind", base, old_key, a)
        # Before the switch: to both keys, and the old client to the old.
        assert submit(both)[0] == 0
        assert submit(behind)[0] == 0
        assert time.monotonic() < switch, "too slow: make WINDOW longer"
        assert recipients(srv, tmp_path) == [1, 2]
        assert srv.run("ingest").stdout.startswith("2 ingested")
        time.sleep(max(0, switch - time.monotonic()) + 1)
        # After it: the same configuration, to the new key only.
        code, said = submit(both)
        assert code == 0, said
        assert f"the server key {a} expired on " in said
        assert f"skipped, the report is encrypted to {b}" in said
        # The old key still decrypts what clients that never updated send.
        assert submit(behind)[0] == 0
        assert recipients(srv, tmp_path) == [1, 1]
        # Received in a later hour than the first reports, as WINDOW
        # stands for a month: the server's clock keeps hours.
        for name in srv.incoming_files():
            later = os.stat(f"{srv.incoming}/{name}").st_mtime_ns \
                + 3600 * 10**9
            os.utime(f"{srv.incoming}/{name}", ns=(later, later))
        assert srv.run("ingest").stdout.startswith("2 ingested, 2 replaced")
        # EXPIRE_DAYS after the switch the old key is retired.
        later = datetime.date.today() + datetime.timedelta(days=21)
        said = srv.run("expire", "--as-of", later.isoformat()).stdout
        assert said.endswith(", 1 expired keys retired\n")
        listed = status(srv)[1]
        assert a not in listed and f"  {b} current, does not expire" in listed
        assert submit(both)[0] == 0 and submit(behind)[0] == 0
        assert srv.run("ingest").stdout.endswith(
            "1 quarantined (1 wrong-key)\n")


# -- replaying days, and progress on a terminal -------------------------------

def test_as_of_replays_past_days(tmp_path):
    srv = Server(tmp_path / "srv", "sqlite", min_hosts=1)
    srv.drop(encryptor().encrypt(make_report()))
    srv.run("ingest")
    today = datetime.date.today()
    assert srv.run("aggregate", "--as-of", "2026-01-05",
                   "--no-publish").stdout == (
        "1 hosts on 2026-01-05; recorded in the history\n")
    assert os.listdir(srv.output) == []
    srv.run("aggregate")
    with open(f"{srv.output}/history.json") as f:
        days = [d["generated"] for d in json.load(f)["days"]]
    assert days == ["2026-01-05", today.isoformat()]
    in_19 = (today + datetime.timedelta(days=19)).isoformat()
    in_20 = (today + datetime.timedelta(days=20)).isoformat()
    assert srv.run("expire", "--as-of", in_19).stdout.startswith("0 hosts")
    assert srv.run("expire", "--as-of", in_20).stdout.startswith("1 hosts")
    assert "expected a date" in srv.run("aggregate", "--as-of", "soon",
                                        check=False).stderr


def on_a_terminal(srv, *args):
    """stderr of a server command whose stderr is a terminal."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen([PYTHON, "-m", "pyweb_popcon.server", "--config",
                             srv.conf, *args], env=ENV, stderr=secondary,
                            stdout=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    os.close(secondary)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:         # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    proc.wait(120)
    os.close(main)
    return out.decode(errors="replace")


def test_progress_bars_on_a_terminal_only(tmp_path):
    srv = Server(tmp_path / "srv", "sqlite")
    for ciphertext in encryptor().encrypt_many(
            [make_report() for _ in range(12)]):
        srv.drop(ciphertext, received=time.time() - 30 * DAY)
    # tqdm draws "what:  0% 0/12 [00:00<?, ?report/s]" and on.
    assert "\ringest:   0% 0/12 [" in on_a_terminal(srv, "ingest")
    assert "\rexpire:   0% 0/12 [" in on_a_terminal(srv, "expire")
    assert "\raggregate:   0% 0/4 [" in on_a_terminal(srv, "aggregate")
    # Not a terminal (a pipe, or the journal under systemd): no bar.
    for ciphertext in encryptor().encrypt_many([make_report()] * 3):
        srv.drop(ciphertext)
    quiet = srv.run("ingest").stderr
    assert "/3 [" not in quiet and "\r" not in quiet
