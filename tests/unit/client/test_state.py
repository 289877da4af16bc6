"""The outbox, state.json and the history, on a fake machine."""

import datetime
import json
import multiprocessing
import os
import time

from pyweb_popcon.client import state


def mode(path):
    return os.stat(path).st_mode & 0o777


def test_outbox(machine):
    root = machine.root
    assert state.pending(root) is None
    state.put(root, b"plain 1", b"cipher 1")
    state.put(root, b"plain 2", b"cipher 2")       # the newer replaces it
    box = state.pending(root)
    assert open(box.ciphertext, "rb").read() == b"cipher 2"
    assert open(box.plaintext, "rb").read() == b"plain 2"
    assert mode(box.ciphertext) == mode(box.plaintext) == 0o600
    state.discard(root)
    assert state.pending(root) is None
    state.discard(root)                             # empty already: fine


def test_history_keeps_the_last_eight(machine):
    root = machine.root
    for n in range(1, 11):
        state.sent(root, f"r-{n}", f"report {n}".encode())
    st = state.load(root)
    assert [e["receipt"] for e in st.history] == [f"r-{n}"
                                                  for n in range(10, 2, -1)]
    assert (st.result, st.receipt) == ("sent", "r-10")
    directory = machine.path(state.HISTORY)
    assert sorted(os.listdir(directory)) == sorted(e["file"]
                                                   for e in st.history)
    assert {mode(os.path.join(directory, n))
            for n in os.listdir(directory)} == {0o600}
    assert mode(machine.path(state.STATE)) == 0o600
    assert state.history_copy(root, st.history[0]) == b"report 10"


def test_attempts_keep_the_last_success(machine):
    root = machine.root
    state.sent(root, "r-1", b"report")
    state.attempted(root, "delivery failed: HTTP 503")
    st = state.load(root)
    assert st.result == "delivery failed: HTTP 503"
    assert st.receipt == "r-1" and st.last_success <= st.last_attempt


def test_six_days_between_reports(machine):
    root = machine.root
    assert state.load(root).next_allowed() is None
    state.sent(root, "r-1", b"report")
    later = state.load(root).next_allowed()
    assert later - state.now() > datetime.timedelta(days=5, hours=23)
    st = state.load(root)
    st.last_success = state.stamp(state.now() - datetime.timedelta(days=6))
    state.save(root, st)
    assert state.load(root).next_allowed() is None


def test_forgotten_starts_afresh(machine):
    root = machine.root
    state.sent(root, "r-1", b"report")
    state.forgotten(root, "r-2")
    st = state.load(root)
    assert (st.result, st.receipt, st.history) == ("forgotten", "r-2", [])
    assert st.last_success is None
    assert os.listdir(machine.path(state.HISTORY)) == []


def test_damaged_state_starts_afresh(machine, caplog):
    for text in ("{", "[]", json.dumps({"last_success": "yesterday"}),
                 json.dumps({"colour": "blue"})):
        machine.file(state.STATE, text)
        assert state.load(machine.root) == state.State()
    assert "is damaged" in caplog.text


def hold(root, ready):
    """Hold the lock for half a second, in another process (at module
    level: forkserver and spawn pickle a process's target)."""
    with state.locked(root):
        ready.set()
        time.sleep(0.5)


def test_lock_serialises_runs(machine):
    ready = multiprocessing.Event()
    other = multiprocessing.Process(target=hold, args=(machine.root, ready))
    other.start()
    assert ready.wait(10)
    start = time.monotonic()
    with state.locked(machine.root):
        waited = time.monotonic() - start
    other.join()
    assert waited > 0.3
    assert os.listdir(machine.path("/var/lib/pyweb-popcon")) == []
