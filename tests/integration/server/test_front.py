"""The nginx site pyweb-popcon-server ships, in front of the real receiver
(gunicorn) on 127.0.0.1: what nginx serves itself, what it passes on and
how, what it refuses, and that no forwarding header counts.  Slow clients,
floods, the logs and the client through it are the booted-system test's
(tests/system/test_front.py)."""

import http.client
import json
import os
import re
import subprocess

import pytest

import front_clients
from front import NGINX, SITE, Nginx, self_signed, wait_for
from front_clients import FORGED, TYPE, Front, exchange
from pyweb_popcon import report
from pyweb_popcon.server import published
from pyweb_popcon.server.intake import serve
from server_fixtures import (ENV, MEDIA_TYPES, PYTHON, Server, encryptor,
                             free_port, make_report, published_names,
                             running_receiver)

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX),
                                reason="nginx is not installed (make deps)")

# nginx's types are mime.types', with the charset only on those of its
# charset_types: not on csv.
PUBLISHED = {name: {**MEDIA_TYPES, "csv": "text/csv"}[name.split(".")[-1]]
             for name in published_names()}
NOT_PUBLISHED = (".tmp-x.json", "popcon.sqlite3", "Index.html", "-a.json")


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return self_signed(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def front(tmp_path, tls):
    """(Server, Nginx, Front): the receiver under gunicorn behind nginx."""
    srv = Server(tmp_path / "srv")
    with running_receiver(srv, tmp_path / "receiver.log"):
        with Nginx(str(tmp_path / "nginx"), f"127.0.0.1:{srv.port}",
                   srv.output, *tls) as nginx:
            yield srv, nginx, Front("127.0.0.1", nginx.https, nginx.http)


def get(front, method, path, body=None, headers=()):
    conn = front.connection()
    try:
        return exchange(conn, method, path, body, headers)
    finally:
        conn.close()


def test_the_site_publishes_what_the_receiver_would():
    """One list of published names: the receiver's, in the site too."""
    with open(SITE) as f:
        site = f.read()
    assert f'location ~ "^/{published.PATTERN.pattern}$"' in site


def test_published_files_come_from_nginx(tmp_path, tls):
    """With no receiver at all: the page is served, /health and /submit
    say 503 with Retry-After, at once."""
    srv = Server(tmp_path / "srv")
    for name in (*PUBLISHED, *NOT_PUBLISHED):
        with open(os.path.join(srv.output, name), "w") as f:
            f.write(f"this is {name}")
    with Nginx(str(tmp_path / "nginx"), f"127.0.0.1:{free_port()}",
               srv.output, *tls) as nginx:
        front = Front("127.0.0.1", nginx.https, nginx.http)
        for name, ctype in PUBLISHED.items():
            status, headers, data = get(front, "GET", "/" + name)
            assert (status, headers["content-type"], data) == (
                200, ctype, f"this is {name}".encode()), name
            assert headers["cache-control"] == "max-age=3600"
            assert "etag" in headers
        status, headers, data = get(front, "GET", "/")
        assert (status, data) == (200, b"this is index.html")
        for name in NOT_PUBLISHED + ("state/",):
            assert get(front, "GET", "/" + name)[0] == 404, name
        for path in ("/../server.conf", "/%2e%2e/server.conf"):
            assert get(front, "GET", path)[0] == 400, path
        for method, path in (("GET", "/health"), ("POST", "/submit")):
            status, headers, data = get(front, method, path, b"x",
                                        {"Content-Type": TYPE})
            assert (status, headers["retry-after"]) == (503, "30")
            assert headers["content-type"] == "application/json"
            assert "try later" in json.loads(data)["error"]


def test_only_whole_submissions_reach_the_receiver(front):
    srv, _, client = front
    body = encryptor().encrypt(make_report())
    status, headers, data = get(client, "POST", "/submit", body,
                                {"Content-Type": TYPE})
    assert status == 202
    assert srv.incoming_files() == [json.loads(data)["receipt"]]
    assert get(client, "GET", "/health")[0] == 200
    with open(os.path.join(srv.output, "index.html"), "w") as f:
        f.write("page")
    # Refused by nginx, with what is allowed.
    for method, path, allow in (("GET", "/submit", "POST"),
                                ("PUT", "/submit", "POST"),
                                ("POST", "/health", "GET, HEAD"),
                                ("DELETE", "/health", "GET, HEAD")):
        status, headers, _ = get(client, method, path, body,
                                 {"Content-Type": TYPE})
        assert (status, headers.get("allow")) == (405, allow), (method, path)
    assert get(client, "POST", "/", b"x")[0] == 405
    assert get(client, "DELETE", "/index.html")[0] == 405
    # The receiver's size limit, in nginx: one byte more is refused, with
    # a length or chunked; exactly the limit is the receiver's to judge.
    big = b"x" * (report.MAX_BYTES + 1)
    assert get(client, "POST", "/submit", big,
               {"Content-Type": TYPE})[0] == 413
    assert get(client, "POST", "/submit", iter([big[:8192]] * 9),
               {"Content-Type": TYPE})[0] == 413
    status, _, data = get(client, "POST", "/submit", big[1:],
                          {"Content-Type": TYPE})
    assert (status, json.loads(data)["error"]) == (
        400, "not an ASCII-armored OpenPGP message")
    # Plain HTTP: a redirect, never a submission.
    for request in (b"GET /stats.json HTTP/1.1\r\nHost: r.test\r\n\r\n",
                    b"POST /submit HTTP/1.1\r\nHost: r.test\r\nContent-Type: "
                    + TYPE.encode() + b"\r\nContent-Length: %d\r\n\r\n"
                    % len(body) + body):
        reply = front_clients.raw(client, client.http, request)
        assert reply == "HTTP/1.1 301 Moved Permanently"
    assert len(srv.incoming_files()) == 1
    with open(srv.log) as f:
        assert "loopback" not in f.read()      # LISTEN is 127.0.0.1


PROBE = """
import json, sys
from pyweb_popcon.server.intake import serve
from pyweb_popcon.server import settings

def app(environ, start_response):
    seen = json.dumps({k: v for k, v in environ.items()
                       if isinstance(v, str)}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(seen)))])
    return [seen]

options = serve.options(settings.load(sys.argv[1]), workers=1)
if sys.argv[2] == "gunicorn-defaults":
    for key in ("forwarded_allow_ips", "secure_scheme_headers",
                "proxy_protocol", "proxy_allow_ips"):
        del options[key]
serve._Gunicorn(app, options).run()
"""


@pytest.fixture
def probe(tmp_path, tls):
    """gunicorn with serve's options ("serve") or without its forwarding
    settings ("gunicorn-defaults"), running an application that answers
    with its WSGI environment, behind nginx: start(kind) -> (gunicorn's
    port, Front of nginx)."""
    srv = Server(tmp_path / "srv")
    running = []

    def start(kind):
        proc = subprocess.Popen([PYTHON, "-c", PROBE, srv.conf, kind],
                                env=ENV, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        nginx = Nginx(str(tmp_path / f"nginx-{kind}"),
                      f"127.0.0.1:{srv.port}", srv.output, *tls)
        running.extend([proc, nginx])
        wait_for(srv.port, proc)
        return srv.port, Front("127.0.0.1", nginx.https, nginx.http)
    yield start
    for thing in running:
        if isinstance(thing, Nginx):
            thing.stop()
        else:
            thing.terminate()
            thing.wait(30)


def environ_after(client, headers):
    status, _, data = get(client, "POST", "/submit", b"x",
                          {"Content-Type": TYPE, **headers})
    assert status == 200
    return json.loads(data)


def direct(port, headers):
    """(status, body) of a POST straight to gunicorn on `port`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/submit", b"x", {"Content-Type": TYPE,
                                              **headers})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_no_forwarding_header_reaches_or_counts(probe):
    port, client = probe("serve")
    plain = environ_after(client, {})
    forged = environ_after(client, FORGED)
    # Through nginx: nothing of the client's but its Content-Type.
    assert sorted(k for k in forged if k.startswith("HTTP_")) == ["HTTP_HOST"]
    assert forged["CONTENT_TYPE"] == TYPE
    assert (forged["wsgi.url_scheme"], forged["SCRIPT_NAME"],
            forged["PATH_INFO"]) == ("http", "", "/submit")
    assert "127.0.0.2" not in json.dumps(forged)
    differs = {k for k in forged if forged[k] != plain.get(k)}
    assert differs <= {"REMOTE_PORT"}, differs
    # Straight to gunicorn, forged scheme headers change nothing either.
    scheme = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"}
    status, data = direct(port, scheme)
    assert status == 200 and json.loads(data)["wsgi.url_scheme"] == "http"
    status, data = direct(port, {"X-Forwarded-Proto": "https"})
    assert json.loads(data)["wsgi.url_scheme"] == "http"


def test_gunicorn_defaults_would_trust_them(probe):
    """The control: with gunicorn's own defaults the same headers from
    127.0.0.1 (where nginx is) change the scheme, or refuse the request."""
    port, _ = probe("gunicorn-defaults")
    status, data = direct(port, {"X-Forwarded-Proto": "https"})
    assert json.loads(data)["wsgi.url_scheme"] == "https"
    assert direct(port, {"X-Forwarded-Proto": "https",
                         "X-Forwarded-Ssl": "off"})[0] == 400


def test_hostile_requests_leave_no_address_in_nginx_logs(tmp_path, tls,
                                                          front):
    """The shipped site writes no error log; nginx's main log and the
    receiver's get nothing with the address.  The control: the same
    requests against the site with an error log at level crit do leave it,
    from malformed TLS handshakes (Debian 12's nginx 1.22 logs those at
    crit), so no level is safe."""
    srv, nginx, _ = front
    body = encryptor().encrypt(make_report())
    shipped = Front("127.0.0.1", nginx.https, nginx.http, source="127.0.0.2")
    said = front_clients.hostile(shipped, body)
    assert said["forged headers"][0] == 202
    assert said["too large"][0] == 413
    assert said["HTTP on 80"] == "HTTP/1.1 301 Moved Permanently"
    nginx.stop()
    for log in (nginx.main_log(), open(srv.log, errors="replace").read()):
        assert "127.0.0.2" not in log
    assert sorted(os.listdir(nginx.top)) == [
        "body", "fastcgi", "main-error.log", "nginx.conf", "proxy", "scgi",
        "site.conf", "uwsgi"]

    control = str(tmp_path / "crit.log")
    with Nginx(str(tmp_path / "control"), f"127.0.0.1:{srv.port}",
               srv.output, *tls, error_log=f"{control} crit") as logging:
        front_clients.hostile(Front("127.0.0.1", logging.https, logging.http,
                                    source="127.0.0.2"), body)
    with open(control, errors="replace") as f:
        crit = [line for line in f if "client: 127.0.0.2" in line]
    assert crit and all("[crit]" in line and "SSL_do_handshake() failed"
                        in line for line in crit), crit


@pytest.mark.parametrize("listen,loopback", [
    ("127.0.0.1:8080", True), ("127.3.4.5:80", True), ("[::1]:8080", True),
    ("localhost:8080", True), ("0.0.0.0:8080", False),
    ("[::]:8080", False), ("192.0.2.7:8080", False),
    ("popcon.example.org:8080", False)])
def test_is_loopback(listen, loopback):
    assert serve.is_loopback(listen) is loopback


def test_serve_says_it_expects_a_proxy_off_loopback(tmp_path):
    srv = Server(tmp_path / "srv")
    os.makedirs(srv.conf + ".d")
    with open(srv.conf + ".d/listen.conf", "w") as f:
        f.write(f'LISTEN="0.0.0.0:{srv.port}"\n')
    with running_receiver(srv, tmp_path / "receiver.log"):
        pass
    with open(srv.log) as f:
        said = f.read()
    assert re.search(rf"LISTEN=0\.0\.0\.0:{srv.port} is not a loopback "
                     r"address: the receiver expects a TLS proxy in front "
                     r"of it \(the nginx site /etc/nginx/sites-available/"
                     r"pyweb-popcon-server\)", said), said
