"""Real DNS for the DNS transport's tests and bench, on loopback: the
server's handler (pyweb-popcon-server dns-backend), PowerDNS
Authoritative with the shipped configuration (adapted: its own directory,
a port of its own), unbound as the client's resolver (qname minimisation
and 0x20 on), and between unbound and PowerDNS a UDP proxy that may drop
queries.  The client is run in a mount namespace of its own where
/etc/resolv.conf names unbound: it resolves as it always does, through the
C library, and only through unbound.  Needs root (unshare, port 53 on a
loopback address of its own)."""

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from processes import wait_or_kill
from pyweb_popcon import dnswire

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_PDNS = os.path.join(ROOT, "etc/powerdns/pdns-pyweb-popcon.conf")
ZONE = "dns.popcon.example"
# The client reaches unbound from 127.0.0.1 (unbound refuses any other
# address); unbound asks from an address of its own.
CLIENT = "127.0.0.1"


def available():
    """Why this stack cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (unshare -m, port 53 on loopback)"
    for program in ("pdns_server", "unbound", "unshare"):
        if not shutil.which(program, path="/usr/sbin:/usr/bin"):
            return f"{program} is not installed"
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/pdns/"
                          "libremotebackend.so") and not any(
            os.path.exists(os.path.join(d, "libremotebackend.so"))
            for d in ("/usr/lib/pdns",)):
        return "pdns-backend-remote is not installed"
    return None


def _addresses():
    """Four loopback addresses no one else here uses: PowerDNS, unbound,
    unbound's outgoing address, the dropping proxy."""
    while True:
        base = f"127.53.{random.randrange(1, 255)}"
        addrs = [f"{base}.{i}" for i in (1, 2, 3, 4)]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((addrs[1], 53))
            return addrs
        except OSError:
            continue


def _wait(check, what, proc, log, timeout=30):
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            with open(log) as f:
                raise RuntimeError(f"{what} did not come up:\n{f.read()}")
        time.sleep(0.05)


def _answers(address, port):
    """True when a DNS server answers on (address, port), UDP."""
    query = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             + b"".join(bytes([len(p)]) + p.encode()
                        for p in ZONE.split(".")) + b"\x00\x00\x06\x00\x01")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(query, (address, port))
            return s.recv(4096)[:2] == b"\x12\x34"
        except OSError:
            return False


def qname(packet):
    """The question's name in a DNS packet, or None."""
    labels, i = [], 12
    try:
        while packet[i]:
            n = packet[i]
            if n >= 64:
                return None
            labels.append(packet[i + 1:i + 1 + n].decode("ascii"))
            i += 1 + n
    except (IndexError, UnicodeDecodeError):
        return None
    return ".".join(labels)


def unbound_conf(interface, outgoing, stub, options=(), tail=""):
    """unbound as the client's resolver on `interface` (answering only
    CLIENT), asking from `outgoing`, with ZONE a stub zone at `stub`
    ("address[@port]"): qname minimisation and 0x20 on, no validation (the
    test zone is not signed).  Further `options` of its server clause, and
    clauses after it (`tail`)."""
    server = [f"interface: {interface}", f"outgoing-interface: {outgoing}",
              "do-ip6: no", "do-not-query-localhost: no",
              "access-control: 0.0.0.0/0 refuse",
              f"access-control: {CLIENT}/32 allow",
              "qname-minimisation: yes", "use-caps-for-id: yes",
              'module-config: "iterator"', *options]
    return ("server:\n" + "".join(f"    {o}\n" for o in server)
            + f'stub-zone:\n    name: "{ZONE}"\n    stub-addr: {stub}\n'
            + tail)


class DropProxy:
    """UDP between unbound and PowerDNS, dropping the queries `drop`
    (a function of the query name) says to drop."""

    def __init__(self, listen, upstream, drop):
        self.upstream, self.drop = upstream, drop
        self.down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.down.bind(listen)
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.bind((listen[0], 0))
        self.waiting = {}           # (DNS id, name): unbound's address
        self.seen, self.dropped = [], []     # query names, as sent
        self.running = True
        threading.Thread(target=self._queries, daemon=True).start()
        threading.Thread(target=self._answers, daemon=True).start()

    def _queries(self):
        while self.running:
            try:
                packet, source = self.down.recvfrom(65535)
            except OSError:
                return
            name = qname(packet)
            self.seen.append(name)
            if name is not None and self.drop(name):
                self.dropped.append(name)
                continue
            self.waiting[packet[:2], (name or "").lower()] = source
            self.up.sendto(packet, self.upstream)

    def _answers(self):
        while self.running:
            try:
                packet = self.up.recv(65535)
            except OSError:
                return
            source = self.waiting.pop((packet[:2], (qname(packet) or "")
                                       .lower()), None)
            if source is not None:
                self.down.sendto(packet, source)

    def close(self):
        self.running = False
        self.down.close()
        self.up.close()


def drop_first_tries(share):
    """A `drop` for DropProxy: the first try of about `share` of the
    chunks, whatever unbound does, so only the client's retry (under a
    name of its own) gets them through."""
    def drop(name):
        chunk = dnswire.parse(name, ZONE)
        return (isinstance(chunk, dnswire.Chunk) and chunk.attempt == 0
                and random.Random(chunk.index).random() < share)
    return drop


class Stack:
    """The running parts, their directories and addresses."""

    def __init__(self, top, srv, drop):
        self.top, self.srv = str(top), srv
        os.makedirs(self.top, exist_ok=True)
        self.pdns_addr, self.unbound_addr, self.outgoing, self.proxy_addr = \
            _addresses()
        self.pdns_port = 5300
        self.sock = os.path.join(self.top, "dns.sock")
        self.procs = []
        self.drop = drop

    def _start(self, name, argv):
        log = os.path.join(self.top, f"{name}.log")
        with open(log, "wb") as f:
            proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL,
                                    env=self.srv_env)
        self.procs.append(proc)
        return proc, log

    def start(self, env):
        self.srv_env = env
        with open(self.srv.conf, "a") as f:
            f.write(f'DNS_ZONE="{ZONE}"\nDNS_NAMESERVERS="ns1.{ZONE}"\n')
        proc, log = self._start("handler", [
            "/usr/bin/python3", "-m", "pyweb_popcon.server", "--config",
            self.srv.conf, "dns-backend", "--socket", self.sock])
        _wait(lambda: os.path.exists(self.sock), "the handler", proc, log)
        # The shipped configuration, with the socket, addresses and
        # directories of this test given on the command line.
        pdns_dir = os.path.join(self.top, "pdns")
        os.makedirs(pdns_dir)
        shutil.copy(SHIPPED_PDNS, pdns_dir)
        proc, log = self._start("pdns", [
            "/usr/sbin/pdns_server", f"--config-dir={pdns_dir}",
            "--config-name=pyweb-popcon", "--daemon=no", "--guardian=no",
            "--disable-syslog", "--write-pid=no", f"--socket-dir={pdns_dir}",
            f"--local-address={self.pdns_addr}",
            f"--local-port={self.pdns_port}",
            f"--remote-connection-string=unix:path={self.sock}"])
        _wait(lambda: _answers(self.pdns_addr, self.pdns_port), "PowerDNS",
              proc, log)
        self.proxy = DropProxy((self.proxy_addr, self.pdns_port),
                               (self.pdns_addr, self.pdns_port), self.drop)
        unbound_dir = os.path.join(self.top, "unbound")
        os.makedirs(unbound_dir)
        conf = os.path.join(unbound_dir, "unbound.conf")
        with open(conf, "w") as f:
            f.write(unbound_conf(
                self.unbound_addr, self.outgoing,
                f"{self.proxy_addr}@{self.pdns_port}",
                ["port: 53", 'username: ""', 'chroot: ""',
                 f'directory: "{unbound_dir}"', 'pidfile: ""',
                 "use-syslog: no", 'logfile: ""', "verbosity: 1",
                 "infra-keep-probing: yes"],
                "remote-control:\n    control-enable: no\n"))
        proc, log = self._start("unbound", ["/usr/sbin/unbound", "-d",
                                            "-c", conf])
        _wait(lambda: _answers(self.unbound_addr, 53), "unbound", proc, log)
        self.resolv_conf = os.path.join(self.top, "resolv.conf")
        with open(self.resolv_conf, "w") as f:
            f.write(f"nameserver {self.unbound_addr}\n"
                    "options timeout:2 attempts:1\n")

    def client_argv(self, argv):
        """`argv` run with this stack's unbound as the system's resolver:
        in a mount namespace of its own, /etc/resolv.conf bound over."""
        nsswitch = os.path.join(self.top, "nsswitch.conf")
        with open(nsswitch, "w") as f:
            f.write("hosts: files dns\n")
        script = ('mount --bind "$0" /etc/resolv.conf && '
                  'mount --bind "$1" /etc/nsswitch.conf && shift && '
                  'exec "$@"')
        return ["unshare", "--mount", "--propagation", "private", "sh",
                "-c", script, self.resolv_conf, nsswitch, *argv]

    def stop(self):
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            wait_or_kill(proc, 10)
        if hasattr(self, "proxy"):
            self.proxy.close()

    def files(self):
        """Every file the server side has: spool, state, database,
        PowerDNS's directory, its log and the handler's (not unbound's:
        the resolver is not the server's)."""
        for path in ("handler.log", "pdns.log"):
            yield os.path.join(self.top, path)
        for top in (self.srv.top, os.path.join(self.top, "pdns")):
            for directory, _, names in os.walk(top):
                for name in names:
                    path = os.path.join(directory, name)
                    if os.path.isfile(path) and not os.path.islink(path):
                        yield path


@contextlib.contextmanager
def running(srv, env, drop=lambda name: False, top=None):
    """A Stack for server `srv` (server_fixtures.Server) until the block
    ends."""
    top = top or tempfile.mkdtemp(prefix="ppc-dns-")
    stack = Stack(top, srv, drop)
    try:
        stack.start(env)
        yield stack
    finally:
        stack.stop()
