"""collect, upload, submit, history, forget against a real local server,
with real gpg: the round trip, the throttle, the history, forget, keys."""

import datetime
import json
import logging
import os

import pytest
from systemd.journal import JournalHandler

from cli_run import run_cli
from gpgkeys import EXPIRED, make_keys, stop_agents
from pyweb_popcon import __version__, report
from pyweb_popcon.client import cli, delivery, https, settings, state
from transport_fixtures import (KEYRING, client, fast,  # noqa: F401
                                files_under, server)
from transport_servers import status_line


def test_round_trip(client, server):
    client.configure(server.url())
    run = client.run("collect")
    assert run.code == 0, run.err
    box = client.pending()
    assert os.stat(box.ciphertext).st_mode & 0o777 == 0o600
    assert os.stat(box.plaintext).st_mode & 0o777 == 0o600
    assert server.requests == []            # collect has no network

    run = client.run("upload")
    assert run.code == 0, run.err
    [request] = server.requests
    assert request["path"] == "/submit"
    assert request["headers"]["Content-Type"] == "application/pgp-encrypted"
    assert request["headers"]["User-Agent"] == f"pyweb-popcon/{__version__}"
    assert request["body"].startswith(b"-----BEGIN PGP MESSAGE-----\n")
    sent = client.keys.decrypt(request["body"])
    assert sent == client.run("show").out.encode()
    assert report.parse(sent).host_id == client.host_id()
    assert f"report sent to {server.url()}: receipt r-1" in run.err

    assert client.pending() is None
    st = client.state()
    assert (st.result, st.receipt) == ("sent", "r-1")
    assert st.last_success == st.last_attempt
    status = client.run("status").out
    assert "Last success: " in status and "(receipt r-1)" in status
    assert "Outbox: empty" in status and "Next report: not before" in status
    history = client.run("history").out.splitlines()
    assert len(history) == 1 and history[0].endswith("receipt r-1")
    assert client.run("history", "1").out.encode() == sent


def test_throttle_force_and_six_days(client, server):
    client.configure(server.url())
    assert client.run("submit").code == 0
    assert len(server.requests) == 1

    run = client.run("submit")              # again, the same day
    assert run.code == 0
    assert "not sending: the last report went less than 6 days ago" \
        in run.err
    assert len(server.requests) == 1 and client.pending() is None

    assert client.run("collect").code == 0
    assert client.run("upload").code == 0   # the timer obeys it, too
    assert len(server.requests) == 1 and client.pending()

    assert client.run("submit", "--force").code == 0
    assert len(server.requests) == 2

    assert client.run("collect").code == 0
    st = client.state()
    st.last_success = state.stamp(state.now() - datetime.timedelta(
        days=6, minutes=1))
    state.save(client.root, st)
    assert client.run("upload").code == 0
    assert len(server.requests) == 3 and client.pending() is None


def test_dry_run_sends_and_writes_nothing(client, server):
    client.configure(server.url())
    before = files_under(client.machine.top)
    run = run_cli(["submit", "--dry-run", "--root", client.machine.top])
    assert run.code == 0, run.stderr
    head, _, body = run.stdout.partition("The report, before encryption:\n")
    assert f"to {server.url()} directly" in head
    assert client.keys.fingerprint in head
    assert "host_id is null here: no host ID yet" in head
    shown = run_cli(["show", "--root", client.machine.top]).stdout
    assert json.loads(body) == json.loads(shown)
    # Importing requests makes a socket to probe for IPv6; nothing connects.
    assert not {"socket.connect", "socket.getaddrinfo"} & set(
        run.socket_events)
    assert server.requests == []
    assert files_under(client.machine.top) == before


def test_history_keeps_the_last_eight(client, server):
    client.configure(server.url())
    for _ in range(10):
        assert client.run("submit", "--force").code == 0
    lines = client.run("history").out.splitlines()
    assert [line.split()[0] for line in lines] == [str(n)
                                                   for n in range(1, 9)]
    assert [line.split()[-1] for line in lines] == [f"r-{n}"
                                                    for n in range(10, 2, -1)]
    directory = client.machine.path(state.HISTORY)
    assert len(os.listdir(directory)) == 8
    assert {os.stat(os.path.join(directory, n)).st_mode & 0o777
            for n in os.listdir(directory)} == {0o600}
    newest = client.keys.decrypt(server.requests[-1]["body"])
    assert client.run("history", "1").out.encode() == newest
    run = client.run("history", "9")
    assert run.code == 64 and "no number 9" in run.err


def test_forget_after_opting_out(client, server):
    client.configure(server.url())
    assert client.run("submit").code == 0
    old = client.host_id()
    assert client.run("collect").code == 0       # a report still waiting
    client.machine.config(
        f'PARTICIPATE="no"\nSUBMIT_URL="{server.url()}"\n'
        f'KEY_FINGERPRINTS="{client.keys.fingerprint}"\n')
    run = client.run("forget")
    assert run.code == 0, run.err
    assert "forget message taken" in run.err
    assert len(server.requests) == 2
    message = report.parse(client.keys.decrypt(server.requests[-1]["body"]))
    assert message == report.Forget(old)
    assert client.host_id() != old
    assert client.pending() is None
    assert client.run("history").out == "No report has been sent yet.\n"
    assert os.listdir(client.machine.path(state.HISTORY)) == []


def test_forget_that_fails_changes_nothing(client, server):
    client.configure(server.url())
    assert client.run("submit").code == 0
    old = client.host_id()
    server.behaviour = ("status", 503)
    run = client.run("forget")
    assert run.code == 75
    assert (f"delivery failed: {status_line(503)}; the host ID and the "
            "history are unchanged: run forget again later") in run.err
    assert client.host_id() == old
    assert len(client.state().history) == 1


def test_forget_without_a_host_id_or_with_do_not_track(client, server,
                                                       monkeypatch):
    client.configure(server.url())
    run = client.run("forget")
    assert run.code == 0 and "Nothing to forget: no host ID yet" in run.out
    assert client.run("collect").code == 0
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    run = client.run("forget")
    assert run.code == 78 and "DO_NOT_TRACK is set" in run.err
    assert server.requests == []


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory):
    """An expired key, and a valid key that is not the configured one."""
    d = str(tmp_path_factory.mktemp("gpg-other"))
    keys = make_keys(d, "expired", EXPIRED), make_keys(d, "stranger")
    yield keys
    stop_agents(keys)


@pytest.mark.parametrize("problem", ["missing", "expired", "fingerprint",
                                     "empty"])
def test_key_problems_stop_everything(client, server, other_keys, problem):
    expired, stranger = other_keys
    fingerprints, expect = {
        "missing": (None, f"cannot read KEYRING "
                          f"{client.machine.path(KEYRING)}: No such file"),
        "expired": (expired.fingerprint, f"the server key "
                    f"{expired.fingerprint} expired on 2020-"),
        "fingerprint": (stranger.fingerprint, f"KEY_FINGERPRINTS names "
                        f"{stranger.fingerprint}, which is not a key in "
                        "KEYRING"),
        # No server configured at all: said, and not a failure (exit 6).
        "empty": ("", "participating, but no server is configured: "
                      "KEY_FINGERPRINTS is empty"),
    }[problem]
    client.configure(server.url(), fingerprints=fingerprints)
    if problem == "missing":
        os.unlink(client.machine.path(KEYRING))
    if problem == "expired":
        with open(expired.public) as f:
            client.machine.file(KEYRING, f.read())
    for command in ("collect", "submit"):
        run = client.run(command)
        if problem == "empty":
            assert run.code == 6
            assert expect in run.err
        else:
            assert run.code == 78
            assert f"pyweb-popcon: server key problem: {expect}" in run.err
    assert client.pending() is None
    assert server.requests == []


def test_journal_fields_and_no_report_content(client, server, caplog):
    """What systemd's JournalHandler would send: fixed MESSAGE_IDs, the
    receipt and HTTP status as fields, nothing of the report."""
    client.configure(server.url())
    caplog.set_level(logging.INFO, logger="pyweb_popcon")   # as main sets
    entries = []
    handler = JournalHandler(
        SYSLOG_IDENTIFIER=settings.IDENTIFIER,
        sender_function=lambda MESSAGE, **fields: entries.append(
            {"MESSAGE": MESSAGE, **fields}))
    logger = logging.getLogger("pyweb_popcon")
    logger.addHandler(handler)
    try:
        conf = settings.load(client.root)
        for behaviour in (("ok",), ("status", 503), ("status", 400)):
            cli.queue_report(client.root, conf)
            server.behaviour = behaviour
            delivery.send_pending(client.root, conf, https, force=True)
    finally:
        logger.removeHandler(handler)
    outcomes = [e for e in entries if "MESSAGE_ID" in e]
    assert [(e["MESSAGE_ID"], e["HTTP_STATUS"], e["PRIORITY"])
            for e in outcomes] == [(delivery.REPORT_SENT, "202", "6"),
                                   (delivery.DELIVERY_FAILED, "503", "4"),
                                   (delivery.DELIVERY_FAILED, "400", "3")]
    assert outcomes[0]["RECEIPT"] == "r-1"
    assert {e["SYSLOG_IDENTIFIER"] for e in entries} == {"pyweb-popcon"}
    sent = report.parse(client.keys.decrypt(server.requests[0]["body"]))
    for entry in entries:
        text = " ".join(str(v) for v in entry.values())
        assert sent.host_id not in text
        assert "flask" not in text.lower() and "3.0.3" not in text
