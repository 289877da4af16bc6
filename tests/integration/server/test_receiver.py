"""The receiver under real gunicorn on 127.0.0.1: acceptance and refusals."""

import http.client
import json
import os
import shutil
import socket

from pyweb_popcon import report
from server_fixtures import (MEDIA_TYPES, Server,  # noqa: F401
                             encryptor, make_report, published_names,
                             receiver, running_receiver)

TYPE = "application/pgp-encrypted"


def request(base, method, path, body=None, headers=None, source="127.0.0.1"):
    host, port = base.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10,
                                      source_address=(source, 0))
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type"), data


def post(base, body, ctype=TYPE, **kw):
    return request(base, "POST", "/submit", body, {"Content-Type": ctype},
                   **kw)


def test_accepts_and_spools_atomically(receiver):  # noqa: F811
    srv, base = receiver
    body = encryptor().encrypt(make_report())
    status, ctype, data = post(base, body)
    assert status == 202 and ctype == "application/json"
    answer = json.loads(data)
    assert answer["status"] == "ok"
    assert srv.incoming_files() == [answer["receipt"]]
    with open(os.path.join(srv.incoming, answer["receipt"]), "rb") as f:
        assert f.read() == body
    assert not [n for n in os.listdir(srv.incoming) if n.startswith(".")]
    # A second submission gets its own receipt.
    assert json.loads(post(base, body)[2])["receipt"] != answer["receipt"]


def test_refusals_write_nothing(receiver):  # noqa: F811
    srv, base = receiver
    good = encryptor().encrypt(make_report())
    assert request(base, "GET", "/submit")[0] == 405
    assert request(base, "PUT", "/submit", good, {"Content-Type": TYPE})[0] \
        == 405
    assert post(base, good, ctype="application/json")[0] == 415
    assert post(base, good, ctype="text/plain")[0] == 415
    assert post(base, b"x" * (report.MAX_BYTES + 1))[0] == 413
    assert post(base, b"hello")[0] == 400
    assert post(base, b"")[0] == 400
    assert post(base, good.replace(b"PGP MESSAGE", b"PGP SIGNATURE"))[0] == 400
    # Signed-only or literal data is not an encrypted message.
    literal = b"-----BEGIN PGP MESSAGE-----\n\nyxR0AAAAAABoZWxsbyB3b3JsZAo=\n" \
              b"-----END PGP MESSAGE-----\n"
    assert post(base, literal)[0] == 400
    status, ctype, data = post(base, b"\x00\xff" * 10)
    assert status == 400 and "error" in json.loads(data)
    assert srv.incoming_files() == []


def test_too_large_is_refused_without_reading_it(receiver):  # noqa: F811
    """A Content-Length of a gigabyte is answered before any body is sent."""
    srv, base = receiver
    host, port = base.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  + TYPE.encode() + b"\r\nContent-Length: 1000000000\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")
    assert srv.incoming_files() == []


def test_chunked_body_is_bounded(receiver):  # noqa: F811
    srv, base = receiver
    host, port = base.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    chunks = (b"A" * 8192 for _ in range(64))   # 512 KiB, no length
    conn.request("POST", "/submit", body=chunks,
                 headers={"Content-Type": TYPE}, encode_chunked=True)
    assert conn.getresponse().status == 413
    assert srv.incoming_files() == []


def test_spool_not_writable_is_503(receiver):  # noqa: F811
    srv, base = receiver
    shutil.rmtree(srv.incoming)
    with open(srv.incoming, "w"):    # even root cannot make files in a file
        pass
    status, _, data = post(base, encryptor().encrypt(make_report()))
    assert status == 503 and "error" in json.loads(data)


def test_health_and_published_page(receiver):  # noqa: F811
    srv, base = receiver
    assert request(base, "GET", "/health")[:2] == (200, "application/json")
    assert request(base, "GET", "/")[0] == 404          # nothing published
    with open(os.path.join(srv.output, "index.html"), "w") as f:
        f.write("<p>hello</p>")
    with open(os.path.join(srv.state, "secret.txt"), "w") as f:
        f.write("not for the web")
    status, ctype, data = request(base, "GET", "/")
    assert (status, ctype, data) == (200, "text/html; charset=utf-8",
                                     b"<p>hello</p>")
    assert request(base, "GET", "/index.html")[0] == 200
    for name in published_names():
        with open(os.path.join(srv.output, name), "w") as f:
            f.write(name)
        assert request(base, "GET", "/" + name) == (
            200, MEDIA_TYPES[name.split(".")[-1]], name.encode()), name
    assert request(base, "GET", "/../state/secret.txt")[0] == 404
    assert request(base, "GET", "/%2e%2e/state/secret.txt")[0] == 404
    assert request(base, "POST", "/", b"x")[0] == 405


def test_serve_loads_no_gnupg_store_or_charts(tmp_path):
    """The real command, as python3 -X importtime sees it: the receiver's
    processes (gunicorn's arbiter and workers) never load GnuPG, the store
    or the charts, not even after taking a submission."""
    srv = Server(tmp_path / "srv", "sqlite")
    with running_receiver(srv, tmp_path / "receiver.log",
                          python_flags=("-X", "importtime")) as base:
        assert post(base, encryptor().encrypt(make_report()))[0] == 202
    with open(srv.log) as f:
        loaded = {line.rsplit("|", 1)[1].strip() for line in f
                  if line.startswith("import time:") and "|" in line}
    # The arbiter's imports and the workers' (their thread pools).
    assert {"pyweb_popcon.server.intake.receive", "concurrent.futures.thread"} \
        <= loaded
    heavy = ("gnupg", "sqlite3", "psycopg", "matplotlib", "jinja2",
             "pyweb_popcon.server.keyholder.gpg", "pyweb_popcon.server.store",
             "pyweb_popcon.server.publish.charts", "pyweb_popcon.server.publish.aggregate")
    assert sorted(m for m in loaded
                  if any(m == h or m.startswith(h + ".") for h in heavy)) == []
