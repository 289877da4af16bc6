"""Real servers on 127.0.0.1 for the transport tests.

- SubmitServer: the other end of the submission protocol, which can also
  misbehave in every way a server out there might (`behaviour`);
- HTTPProxy: a forwarding proxy (absolute-form requests and CONNECT);
- Socks5: a SOCKS5 server standing in for Tor.
The proxies resolve names through `hosts` only, so a request for a name
that does not resolve here proves it went through them.
"""

import http
import http.server
import json
import selectors
import socket
import socketserver
import ssl
import struct
import threading
import time


class _Threaded:
    """Start a socketserver in a thread; stop it, and its handlers."""

    def start(self):
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    @property
    def port(self):
        return self.server_address[1]

    def stop(self):
        self.stopping.set()
        self.shutdown()
        self.server_close()


# -- the submission server ----------------------------------------------------

def status_line(code):
    """"HTTP 413 Content Too Large": how the client names the reply `code`
    of this server, whose reason phrase is this Python's (3.13 renamed
    413's, "Request Entity Too Large" before)."""
    return f"HTTP {code} {http.HTTPStatus(code).phrase}"


class _SubmitHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server.requests.append({"path": self.path, "body": body,
                                "headers": dict(self.headers)})
        getattr(self, "_" + server.behaviour[0])(*server.behaviour[1:])

    def _ok(self):
        self._reply(202, json.dumps(
            {"status": "ok",
             "receipt": f"r-{len(self.server.requests)}"}).encode())

    def _status(self, code):
        self._reply(code, b'{"status": "error"}')

    def _reply(self, code, body, headers=()):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _garbage_202(self):
        self._reply(202, b"<html>thanks!</html>")

    def _not_http(self):
        self.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")

    def _redirect(self):
        self._reply(302, b"", [("Location", self.path)])

    def _silent(self):
        self.server.stopping.wait(60)

    def _trickle(self):
        # Each byte comes well within the client's read timeout; the
        # status line itself never ends.
        for byte in b"HTTP/1.1 202 Accepted" * 1000:
            if self.server.stopping.wait(0.1):
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return


class SubmitServer(_Threaded, http.server.ThreadingHTTPServer):
    """behaviour: ("ok",), ("status", N), ("garbage_202",), ("not_http",),
    ("redirect",), ("silent",), ("trickle",)."""
    daemon_threads = True

    def __init__(self, tls=None):
        super().__init__(("127.0.0.1", 0), _SubmitHandler)
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self.socket = context.wrap_socket(self.socket, server_side=True)
        self.behaviour = ("ok",)
        self.requests = []

    def handle_error(self, request, client_address):
        pass        # a client that gave up is not a test failure

    def url(self, host="127.0.0.1", scheme="http"):
        return f"{scheme}://{host}:{self.port}/submit"


# -- the proxies --------------------------------------------------------------

def _pipe(a, b, stopping):
    """Copy bytes both ways between sockets a and b until one side ends."""
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    while not stopping.is_set():
        for key, _ in sel.select(0.1):
            data = key.fileobj.recv(65536)
            if not data:
                return
            key.data.sendall(data)


def _read_head(sock):
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        if not data:
            raise ConnectionError("closed before the end of the head")
        head += data
    return head


class _TCPServer(_Threaded, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler, hosts):
        super().__init__(("127.0.0.1", 0), handler)
        self.hosts = hosts
        self.seen = []

    def upstream(self, host, port):
        return socket.create_connection((self.hosts[host], port), timeout=5)


class _ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self):
        head = _read_head(self.request)
        method, target, version = head.split(b"\r\n", 1)[0].decode().split()
        self.server.seen.append((method, target))
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            with self.server.upstream(host, int(port)) as up:
                self.request.sendall(b"HTTP/1.1 200 Connection established"
                                     b"\r\n\r\n")
                _pipe(self.request, up, self.server.stopping)
            return
        # http://host:port/path -> /path, to the host
        rest = target.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        line = f"{method} /{path} {version}\r\n".encode()
        with self.server.upstream(host, int(port or 80)) as up:
            up.sendall(line + head.split(b"\r\n", 1)[1])
            _pipe(self.request, up, self.server.stopping)


class HTTPProxy(_TCPServer):
    def __init__(self, hosts):
        super().__init__(_ProxyHandler, hosts)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


class _SocksHandler(socketserver.BaseRequestHandler):
    def _exactly(self, n):
        data = b""
        while len(data) < n:
            more = self.request.recv(n - len(data))
            if not more:
                raise ConnectionError("closed")
            data += more
        return data

    def handle(self):
        version, methods = self._exactly(2)
        self._exactly(methods)
        self.request.sendall(b"\x05\x00")            # no authentication
        version, command, _, kind = self._exactly(4)
        if kind == 1:
            host = socket.inet_ntoa(self._exactly(4))
        elif kind == 3:
            host = self._exactly(self._exactly(1)[0]).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, self._exactly(16))
        port = struct.unpack("!H", self._exactly(2))[0]
        self.server.seen.append((host, port))
        with self.server.upstream(host, port) as up:
            self.request.sendall(b"\x05\x00\x00\x01" + bytes(4) + bytes(2))
            _pipe(self.request, up, self.server.stopping)


class Socks5(_TCPServer):
    def __init__(self, hosts):
        super().__init__(_SocksHandler, hosts)


def free_port():
    """A port on 127.0.0.1 where nothing listens (connections refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Clock:
    """How long a block took."""

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.start
