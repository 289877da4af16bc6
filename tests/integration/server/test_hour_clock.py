"""No time finer than the hour on the server's side: whoever holds a log
of TLS connections must not line a host ID up with an address by it."""

import datetime
import json
import os
import urllib.request
import uuid

from server_fixtures import (encryptor, make_report,  # noqa: F401
                             receiver)

HOUR_NS = 3600 * 10**9


def post(base, body):
    request = urllib.request.Request(
        base + "/submit", body,
        {"Content-Type": "application/pgp-encrypted"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def times(top):
    """{path: (atime_ns, mtime_ns)} of every file below `top`."""
    found = {}
    for directory, _, names in os.walk(top):
        for name in names:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            found[path] = (st.st_atime_ns, st.st_mtime_ns)
    return found


def finer_than_the_hour(found):
    return {path: t for path, t in found.items()
            if any(ns % HOUR_NS for ns in t)}


def test_spool_quarantine_store_and_run_records_keep_hours(receiver):  # noqa: F811,E501
    srv, base = receiver
    enc = encryptor()
    host = str(uuid.uuid4())
    for body in (enc.encrypt(make_report(host)), enc.encrypt(b"{broken")):
        assert post(base, body) == 202
    waiting = times(srv.incoming)
    assert len(waiting) == 2
    assert finer_than_the_hour(waiting) == {}

    srv.run("ingest")
    quarantined = times(srv.quarantine)
    assert len(quarantined) == 2            # the submission and its .reason
    assert finer_than_the_hour(quarantined) == {}
    runs = times(os.path.join(srv.state, "runs"))
    assert runs and finer_than_the_hour(runs) == {}
    for path in runs:
        with open(path) as f:
            record = json.load(f)
        for key in ("started", "finished"):
            moment = datetime.datetime.fromisoformat(record[key])
            assert (moment.minute, moment.second, moment.microsecond) \
                == (0, 0, 0), (path, key, record[key])
    with srv.store() as store:
        received = store.query("SELECT host_id, received FROM hosts")
    assert [h for h, _ in received] == [host]
    assert all(ns % HOUR_NS == 0 for _, ns in received)
