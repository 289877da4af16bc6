"""Clients of the front door, good and hostile, for the tests.

Used in-process by tests on this machine, and as a script inside the
booted-system test's container, printing JSON:

    front_clients.py [--host H] [--https P] [--http P] [--cafile F]
                     [--source ADDR] COMMAND ...

  hostile BODY          every kind of bad request, and good ones with forged
                        forwarding headers; what each got back
  stall BODY            500 connections that stall or trickle, held for
                        --hold seconds; meanwhile timed submissions
  starve HOST:PORT      stalled requests straight to a receiver until GET
                        /health there is not answered: how many it took
  flood BODY            --clients keep-alive clients posting for --seconds
"""

import argparse
import http.client
import json
import socket
import ssl
import sys
import threading
import time

TYPE = "application/pgp-encrypted"
FORGED = {"X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2",
          "Forwarded": "for=127.0.0.2;proto=https", "X-Forwarded-Proto":
          "https", "X-Forwarded-Ssl": "off", "X-Forwarded-Host": "evil.test",
          "Client-IP": "127.0.0.2", "True-Client-IP": "127.0.0.2",
          "SCRIPT_NAME": "/sub", "Via": "1.1 127.0.0.2"}


class Front:
    """Where the front is and how to reach it."""

    def __init__(self, host="127.0.0.1", https=443, http=80, cafile=None,
                 source=None):
        self.host, self.https, self.http = host, https, http
        self.source = (source, 0) if source else None
        self.context = ssl.create_default_context(cafile=cafile)
        if not cafile:
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE

    def tcp(self, port, timeout=10):
        return socket.create_connection((self.host, port), timeout,
                                        source_address=self.source)

    def tls(self, timeout=10):
        return self.context.wrap_socket(self.tcp(self.https, timeout),
                                        server_hostname=self.host)

    def connection(self, timeout=30):
        """An HTTPS connection that can be kept alive."""
        return http.client.HTTPSConnection(
            self.host, self.https, timeout=timeout, context=self.context,
            source_address=self.source)


def exchange(conn, method, path, body=None, headers=()):
    """(status, {header: value}, body bytes) of one request on `conn`."""
    headers = {"Host": "receiver.test", **dict(headers)}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, \
        resp.read()


def submit(front, body, headers=()):
    """One POST /submit on a new connection: (status, receipt, seconds)."""
    start = time.monotonic()
    conn = front.connection()
    try:
        status, _, data = exchange(conn, "POST", "/submit", body,
                                   {"Content-Type": TYPE, **dict(headers)})
    finally:
        conn.close()
    receipt = json.loads(data).get("receipt") if status == 202 else None
    return status, receipt, time.monotonic() - start


def raw(front, port, data, tls=False, wait=3):
    """Send `data` as it is; the first line of the reply, or how it ended."""
    try:
        s = front.tls(wait) if tls else front.tcp(port, wait)
    except (OSError, ssl.SSLError) as e:
        return f"refused: {type(e).__name__}"
    with s:
        try:
            s.sendall(data)
            reply = s.recv(4096)
        except socket.timeout:
            return "no reply"
        except (OSError, ssl.SSLError) as e:
            return f"closed: {type(e).__name__}"
    return reply.split(b"\r\n", 1)[0].decode("latin-1") or "closed"


# -- hostile ---------------------------------------------------------------

def hostile(front, body):
    """Bad requests of every kind, and good ones carrying forged forwarding
    headers; {name: what came back}."""
    out = {}

    def req(name, method, path, data=None, headers=()):
        conn = front.connection()
        try:
            status, got, _ = exchange(conn, method, path, data, headers)
            out[name] = [status, got.get("retry-after")]
        except (OSError, http.client.HTTPException) as e:
            out[name] = [f"closed: {type(e).__name__}", None]
        finally:
            conn.close()

    req("forged headers", "POST", "/submit", body,
        {"Content-Type": TYPE, **FORGED})
    req("GET /submit", "GET", "/submit")
    req("PUT /submit", "PUT", "/submit", body, {"Content-Type": TYPE})
    req("POST /health", "POST", "/health", b"x")
    req("DELETE /", "DELETE", "/")
    req("not published", "GET", "/popcon.sqlite3")
    req("traversal", "GET", "/../../etc/passwd")
    req("wrong type", "POST", "/submit", body, {"Content-Type": "text/plain"})
    req("not ciphertext", "POST", "/submit", b"hello",
        {"Content-Type": TYPE})
    req("too large", "POST", "/submit", b"x" * (1 << 20),
        {"Content-Type": TYPE})
    # An iterable body goes chunked.
    req("too large, chunked", "POST", "/submit", iter([b"x" * 8192] * 9),
        {"Content-Type": TYPE})
    req("long URI", "GET", "/" + "a" * 20000)
    req("huge header", "GET", "/", None, {"X-Big": "b" * 20000})
    out["plain HTTP on 443"] = raw(front, front.https,
                                   b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    out["HTTP on 80"] = raw(front, front.http,
                            b"POST /submit HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Length: 1\r\n\r\nx")
    out["garbage on 80"] = raw(front, front.http, b"\x00\xff" * 64 + b"\r\n")
    out["garbage on 443"] = raw(front, front.https, b"\x00\xff" * 64)
    out["bad method over TLS"] = raw(front, front.https,
                                     b"FOO\x01 / HTTP/1.1\r\n\r\n", tls=True)
    # TLS records nginx 1.22 reports at level crit, with the address.
    out["short ClientHello"] = raw(front, front.https,
                                   bytes.fromhex("16030100050100000100"))
    out["oversized TLS record"] = raw(front, front.https,
                                      bytes.fromhex("160301ffff") + bytes(64))
    return out


# -- slow clients ----------------------------------------------------------

class Stall:
    """`count` connections that stall or trickle, in four kinds: silent TCP
    to the TLS port, half a request line on port 80, half a header over
    TLS, and a whole header whose body comes a byte a second."""

    KINDS = ("silent", "request line", "header", "trickle")

    def __init__(self, front, count):
        self.front = front
        self.socks = {kind: [] for kind in self.KINDS}
        for i in range(count):
            kind = self.KINDS[i % 4]
            if kind == "silent":
                s = front.tcp(front.https)
            elif kind == "request line":
                s = front.tcp(front.http)
                s.sendall(b"POST /sub")
            elif kind == "header":
                s = front.tls()
                s.sendall(b"POST /submit HTTP/1.1\r\nHost: receiver.test\r\n")
            else:
                s = front.tls()
                s.sendall(b"POST /submit HTTP/1.1\r\nHost: receiver.test\r\n"
                          b"Content-Type: " + TYPE.encode() +
                          b"\r\nContent-Length: 2000\r\n\r\n-")
            s.setblocking(False)
            self.socks[kind].append(s)
        self.ended = set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self):
        while not self.stopping.wait(1):
            for s in self.socks["trickle"]:
                try:
                    s.send(b"-")
                except (OSError, ssl.SSLError):
                    pass

    def open(self):
        """{kind: how many the server has neither answered nor closed}."""
        self.ended |= {s for socks in self.socks.values() for s in socks
                       if s not in self.ended and not _waiting(s)}
        return {kind: sum(s not in self.ended for s in socks)
                for kind, socks in self.socks.items()}

    def close(self):
        self.stopping.set()
        self.thread.join()
        for socks in self.socks.values():
            for s in socks:
                s.close()


def _waiting(s):
    """True while the server has neither answered on `s` nor closed it
    (TLS's own messages, such as session tickets, are not answers)."""
    try:
        if isinstance(s, ssl.SSLSocket):
            s.recv(1)
        else:
            s.recv(1, socket.MSG_PEEK)
    except (BlockingIOError, ssl.SSLWantReadError):
        return True
    except (OSError, ssl.SSLError):
        pass
    return False


def stall(front, body, count=500, hold=12.0, submissions=5):
    """Hold `count` slow connections; submit meanwhile; hold on until
    `hold` seconds have gone, for the server's timeouts."""
    start = time.monotonic()
    slow = Stall(front, count)
    try:
        opened = slow.open()
        done = [submit(front, body) for _ in range(submissions)]
        during = slow.open()
        time.sleep(max(0.0, hold - (time.monotonic() - start)))
        after = slow.open()
    finally:
        slow.close()
    return {"opened": opened, "during": during, "after": after,
            "submissions": done}


def starve(host, port, most=500, step=20, wait=2.0):
    """Requests that promise a body and never send it, straight to
    host:port, `step` more at a time until GET /health there goes
    unanswered for `wait` s, or `most` are held: how many it took (None if
    `most` did not)."""
    held = []
    try:
        while len(held) < most:
            for _ in range(step):
                s = socket.create_connection((host, port), 5)
                s.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: " + TYPE.encode() +
                          b"\r\nContent-Length: 2000\r\n\r\n")
                held.append(s)
            time.sleep(0.2)
            conn = http.client.HTTPConnection(host, port, timeout=wait)
            try:
                conn.request("GET", "/health")
                conn.getresponse().read()
            except OSError:
                return {"stalled": len(held)}
            finally:
                conn.close()
        return {"stalled": None}
    finally:
        for s in held:
            s.close()


# -- flood -----------------------------------------------------------------

def flood(front, body, clients=100, seconds=6.0):
    """`clients` threads posting over kept-alive connections for `seconds`:
    a list of [status, Retry-After, receipt, seconds] or [error, ...]."""
    results, lock = [], threading.Lock()
    end = time.monotonic() + seconds

    def client():
        conn = None
        while time.monotonic() < end:
            start = time.monotonic()
            try:
                conn = conn or front.connection()
                status, got, data = exchange(conn, "POST", "/submit", body,
                                             {"Content-Type": TYPE})
                receipt = json.loads(data)["receipt"] if status == 202 \
                    else None
                row = [status, got.get("retry-after"), receipt]
                if got.get("connection") == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                row = [type(e).__name__, None, None]
                conn = None
            with lock:
                results.append(row + [time.monotonic() - start])
        if conn:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--https", type=int, default=443)
    p.add_argument("--http", type=int, default=80)
    p.add_argument("--cafile")
    p.add_argument("--source")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("hostile", "stall", "flood"):
        sub.add_parser(name).add_argument("body")
    sub.choices["stall"].add_argument("--count", type=int, default=500)
    sub.choices["stall"].add_argument("--hold", type=float, default=12)
    sub.choices["flood"].add_argument("--clients", type=int, default=100)
    sub.choices["flood"].add_argument("--seconds", type=float, default=6)
    sub.add_parser("starve").add_argument("receiver")
    args = p.parse_args(argv)
    front = Front(args.host, args.https, args.http, args.cafile,
                  args.source)
    if args.command == "starve":
        host, port = args.receiver.rsplit(":", 1)
        out = starve(host, int(port))
    else:
        with open(args.body, "rb") as f:
            body = f.read()
        if args.command == "hostile":
            out = hostile(front, body)
        elif args.command == "stall":
            out = stall(front, body, args.count, args.hold)
        else:
            out = flood(front, body, args.clients, args.seconds)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
