"""The spool cannot fill the disk: the receiver under real gunicorn answers
503 with Retry-After while incoming/ is at SPOOL_MAX_FILES or
SPOOL_MAX_BYTES or the file system is under SPOOL_MIN_FREE, and a 202
still means the submission is complete in incoming/."""

import http.client
import json
import os
import stat
import time

from pyweb_popcon.server.intake import limits, receive
from pyweb_popcon.server.spool import Spool
from server_fixtures import Server, encryptor, make_report, running_receiver


def limited(tmp_path, **settings):
    srv = Server(tmp_path / "srv", "sqlite")
    with open(srv.conf, "a") as f:
        for key, value in settings.items():
            f.write(f'{key}="{value}"\n')
    return srv


def post(base, body):
    host, port = base.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/submit", body=body,
                 headers={"Content-Type": "application/pgp-encrypted"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.getheader("Retry-After"), json.loads(data)


def temporaries(srv):
    tmp = os.path.join(srv.spool, Spool.TMP)
    return os.listdir(tmp) if os.path.isdir(tmp) else []


def refused(srv, base, body):
    before = srv.incoming_files()
    status, retry, answer = post(base, body)
    assert (status, retry) == (503, str(receive.RETRY_AFTER)), answer
    assert "try later" in answer["error"]
    assert srv.incoming_files() == before
    assert temporaries(srv) == []


def test_full_by_files_then_room_again(tmp_path):
    srv = limited(tmp_path, SPOOL_MAX_FILES=3)
    waiting = [srv.drop(b"waiting") for _ in range(3)]
    body = encryptor().encrypt(make_report())
    with running_receiver(srv, tmp_path / "receiver.log") as base:
        for _ in range(6):          # whichever worker takes it
            refused(srv, base, body)
        for name in waiting:        # ingest catches up
            os.unlink(os.path.join(srv.incoming, name))
        time.sleep(limits.COUNT_EVERY + 0.2)
        status, _, answer = post(base, body)
        assert status == 202
    assert srv.incoming_files() == [answer["receipt"]]
    path = os.path.join(srv.incoming, answer["receipt"])
    with open(path, "rb") as f:
        assert f.read() == body
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    # Written in tmp/ and renamed: nothing left there, nothing half-written
    # ever in incoming/.
    assert temporaries(srv) == []
    with open(srv.log) as f:
        log = f.read()
    # Said once per worker process (there are two), not per request; which
    # worker takes which request is the kernel's choice.
    assert 1 <= log.count("refusing submissions: 3 files in") <= 2


def test_full_by_bytes(tmp_path):
    srv = limited(tmp_path, SPOOL_MAX_BYTES="10K")
    srv.drop(b"x" * 6000)
    body = encryptor().encrypt(make_report())
    with running_receiver(srv, tmp_path / "receiver.log") as base:
        assert post(base, body)[0] == 202
        srv.drop(b"x" * 6000)       # another worker's, say
        time.sleep(limits.COUNT_EVERY + 0.2)
        refused(srv, base, body)
    with open(srv.log) as f:
        assert "bytes in" in f.read()


def test_nearly_full_file_system(tmp_path):
    srv = limited(tmp_path, SPOOL_MIN_FREE="1000000T")
    with running_receiver(srv, tmp_path / "receiver.log") as base:
        refused(srv, base, encryptor().encrypt(make_report()))
    with open(srv.log) as f:
        assert "bytes free on the file system" in f.read()
