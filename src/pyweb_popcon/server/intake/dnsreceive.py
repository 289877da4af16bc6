"""The DNS receiver: PowerDNS's remote backend for the submission zone.

PowerDNS Authoritative (pdns-server, with pdns-backend-remote) answers
the queries for DNS_ZONE and asks this process what each name holds:
JSON objects, one a line, over a Unix socket (remote-connection-string=
unix:path=...), one connection for each of its threads.  A query name
carries a chunk of an encrypted message (pyweb_popcon.dnswire); the
chunks are put together here, in memory, shared by all connections, and a
complete message goes into the spool exactly as the HTTPS receiver
stores one (Spool.store: written whole, fsync, rename; the same limits),
received when it is complete.  It must be OpenPGP encrypted data, as the
receiver checks.  Ingest sees no difference.

No address is kept: PowerDNS passes the address of the resolver that
asked ("remote", "local", "real-remote") with each lookup, and none of
them is ever read.  Messages left incomplete for DNS_TIMEOUT seconds are
dropped; at most DNS_MAX_PENDING of them, DNS_MAX_PENDING_BYTES in all,
are held: beyond that a new message is answered "busy", as the receiver
answers 503.  Like the receiver, this process never loads GnuPG, the store
or the key.
"""

import collections
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

from pyweb_popcon import dnswire, report
from pyweb_popcon.dnswire import Code
from pyweb_popcon.server.intake import limits
from pyweb_popcon.server.spool import Spool
from pyweb_popcon.openpgp import is_encrypted_message

logger = logging.getLogger(__name__)

MAX_MESSAGE = report.MAX_BYTES
MAX_REQUEST = 64 * 1024          # bytes in one line from PowerDNS
MAX_CONNECTIONS = 64             # PowerDNS opens one per thread
# The SOA: a negative answer may be cached for NEGATIVE_TTL seconds.  The
# chunks' answers are not cached at all (TTL 0): each name is asked once.
NEGATIVE_TTL = 5
ZONE_TTL = 3600
SERIAL = 1


@dataclass
class _Message:
    started: float
    count: int
    parts: dict = field(default_factory=dict)    # index: payload
    size: int = 0


class Reassembly:
    """Chunks put together into messages, and messages into the spool."""

    def __init__(self, spool, gauge, timeout, max_pending, max_bytes,
                 clock=time.monotonic):
        self.spool, self.gauge = spool, gauge
        self.timeout, self.clock = timeout, clock
        self.max_pending, self.max_bytes = max_pending, max_bytes
        self.lock = threading.Lock()
        self.pending = collections.OrderedDict()     # oldest first
        self.done = collections.OrderedDict()        # message ID: when
        self.held = 0                                # bytes in pending
        self.refusing = False

    def take(self, chunk):
        """The Code that answers `chunk`."""
        # Before the lock: a count of a large spool takes a while, and no
        # other connection's chunk may wait for it (the gauge lets the
        # others go on with the last count meanwhile).
        full = self._full()
        with self.lock:
            now = self.clock()
            self._expire(now)
            if chunk.message_id in self.done:
                return Code.COMPLETE
            if chunk.count > MAX_MESSAGE:       # at least a byte each
                return Code.REFUSED
            message = self.pending.get(chunk.message_id)
            if message is None:
                message = self._start(chunk, now, full)
                if message is None:
                    return Code.BUSY
            if message.count != chunk.count:
                return Code.REFUSED
            known = message.parts.get(chunk.index)
            if known is not None:
                # Asked again (a lost answer, a resolver's retry).
                if known != chunk.payload:
                    return Code.REFUSED
                if len(message.parts) < message.count:
                    return Code.STORED
                # Complete but not stored yet (the spool was full).
                return self._complete(chunk.message_id, message, now, full)
            if message.size + len(chunk.payload) > MAX_MESSAGE:
                self._drop(chunk.message_id)
                return Code.REFUSED
            if self.held + len(chunk.payload) > self.max_bytes:
                if not message.parts:       # started for this chunk
                    self._drop(chunk.message_id)
                self._busy("DNS_MAX_PENDING_BYTES bytes in incomplete "
                           "messages")
                return Code.BUSY
            message.parts[chunk.index] = chunk.payload
            message.size += len(chunk.payload)
            self.held += len(chunk.payload)
            if len(message.parts) < message.count:
                return Code.STORED
            return self._complete(chunk.message_id, message, now, full)

    def _start(self, chunk, now, full):
        """A new message for `chunk`, or None when none may start now
        (`full` says why the spool takes nothing, if it does not)."""
        if len(self.pending) >= self.max_pending:
            return self._busy("DNS_MAX_PENDING incomplete messages")
        if full:
            return self._busy(full)
        self._busy(None)
        message = self.pending[chunk.message_id] = _Message(now, chunk.count)
        return message

    def _full(self):
        try:
            return self.gauge.full()
        except OSError:         # no incoming/ to count: nowhere to write
            return "no spool to write to"

    def _busy(self, why):
        """Say when refusing starts and ends, not for every chunk; None."""
        if why and not self.refusing:
            logger.warning("DNS: refusing new messages: %s", why)
        elif self.refusing and not why:
            logger.warning("DNS: taking new messages again")
        self.refusing = bool(why)
        return None

    def _complete(self, message_id, message, now, full):
        data = b"".join(message.parts[i] for i in range(message.count))
        if not is_encrypted_message(data):
            self._drop(message_id)
            logger.info("DNS: a complete message is not OpenPGP encrypted "
                        "data: dropped")
            return Code.REFUSED
        # Full now: kept, and stored when any chunk is asked again.
        if full:
            return Code.BUSY
        try:
            self.spool.store(data)
        except OSError as e:
            logger.warning("DNS: cannot store a submission: %s", e)
            return Code.BUSY
        self.gauge.add(len(data))
        self._drop(message_id)
        self.done[message_id] = now
        while len(self.done) > self.max_pending:
            self.done.popitem(last=False)
        return Code.COMPLETE

    def _drop(self, message_id):
        message = self.pending.pop(message_id)
        self.held -= message.size

    def _expire(self, now):
        cutoff = now - self.timeout
        dropped = 0
        while self.pending:
            message_id, message = next(iter(self.pending.items()))
            if message.started > cutoff:
                break
            self._drop(message_id)
            dropped += 1
        while self.done and next(iter(self.done.values())) <= cutoff:
            self.done.popitem(last=False)
        if dropped:
            logger.info("DNS: %d incomplete messages dropped after "
                        "DNS_TIMEOUT (%d s)", dropped, self.timeout)


class Zone:
    """What each name of the zone holds, as PowerDNS's lookups ask."""

    def __init__(self, zone, nameservers, reassembly):
        self.zone = zone.lower().rstrip(".")
        self.nameservers = nameservers
        self.reassembly = reassembly

    def _record(self, qtype, qname, content, ttl):
        return {"qtype": qtype, "qname": qname, "content": content,
                "ttl": ttl, "auth": True}

    def lookup(self, qtype, qname):
        """The records of type `qtype` (or all, for ANY) at `qname`."""
        name = qname.rstrip(".").lower()
        wanted = (lambda t: qtype in ("ANY", t))
        if name == self.zone:
            apex = []
            if wanted("SOA"):
                apex.append(self._record("SOA", qname, (
                    f"{self.nameservers[0]}. hostmaster.{self.zone}. "
                    f"{SERIAL} 3600 600 604800 {NEGATIVE_TTL}"), ZONE_TTL))
            if wanted("NS"):
                apex += [self._record("NS", qname, f"{ns}.", ZONE_TTL)
                         for ns in self.nameservers]
            return apex
        chunk = dnswire.parse(qname, self.zone)
        if chunk is dnswire.PARTIAL:
            # An empty non-terminal: it exists, with no records of its own.
            return [self._record("ENT", qname, "", ZONE_TTL)] \
                if qtype == "ANY" else []
        if chunk is None or not wanted("A"):
            return []
        code = self.reassembly.take(chunk)
        return [self._record("A", qname, dnswire.answer(qname, code), 0)]

    def domain(self):
        return {"id": 1, "zone": self.zone + ".", "kind": "native",
                "serial": SERIAL}


class Backend:
    """PowerDNS's remote backend protocol: a request, its reply."""

    def __init__(self, zone):
        self.zone = zone

    def reply(self, request):
        """The result for `request`, a JSON object; ValueError when it is
        not one PowerDNS sends."""
        method = request.get("method")
        params = request.get("parameters") or {}
        if not isinstance(params, dict):
            raise ValueError("its parameters are not an object")
        # Only the parameters named here are read: never "remote", "local"
        # or "real-remote", the resolver's address.
        if method == "initialize":
            return True
        if method == "lookup":
            return self.zone.lookup(str(params.get("qtype", "")),
                                    str(params.get("qname", "")))
        if method == "getAllDomains":
            return [self.zone.domain()]
        if method == "getDomainInfo":
            name = str(params.get("name", "")).rstrip(".").lower()
            return self.zone.domain() if name == self.zone.zone else False
        if method == "getAllDomainMetadata":
            return {}
        if method == "getDomainMetadata":
            return []
        return False

    def answer(self, line):
        """The reply line to a request line: a request that is not what
        PowerDNS sends, or that fails, costs one error answer, never the
        connection."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
            result = self.reply(request)
        except ValueError as e:
            logger.warning("DNS: a request from PowerDNS that is not a JSON "
                           "object of the remote backend's: %s", e)
            result = False
        except Exception:
            # Never the request in the journal: it holds the resolver's
            # address.
            logger.exception("DNS: a request from PowerDNS failed")
            result = False
        return (json.dumps({"result": result}) + "\n").encode()

    def serve_connection(self, conn):
        """Answer one PowerDNS connection, line by line, until it closes."""
        with conn, conn.makefile("rb") as lines:
            for line in iter(lambda: lines.readline(MAX_REQUEST + 1), b""):
                if len(line) > MAX_REQUEST:
                    logger.warning("DNS: a request of more than %d bytes: "
                                   "connection closed", MAX_REQUEST)
                    return
                conn.sendall(self.answer(line))

    def serve(self, listener):
        """Accept PowerDNS's connections on `listener`, for ever."""
        slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        while True:
            slots.acquire()
            conn, _ = listener.accept()

            def serve(conn=conn):
                try:
                    self.serve_connection(conn)
                except OSError as e:
                    logger.info("DNS: a connection from PowerDNS ended: %s",
                                e)
                finally:
                    slots.release()

            threading.Thread(target=serve, daemon=True,
                             name="pyweb-popcon-dns").start()


def backend(conf, clock=time.monotonic):
    """The Backend for a loaded configuration; ValueError without a zone."""
    if not conf["DNS_ZONE"]:
        raise ValueError("DNS_ZONE is empty: set it to the zone delegated to "
                         "this server (see pyweb-popcon-server(8))")
    if not conf["DNS_NAMESERVERS"]:
        raise ValueError("DNS_NAMESERVERS is empty: set it to the names of "
                         "the zone's name servers, as the parent's NS "
                         "records give them")
    reassembly = Reassembly(Spool(conf["SPOOL_DIR"]),
                            limits.from_config(conf), conf["DNS_TIMEOUT"],
                            conf["DNS_MAX_PENDING"],
                            conf["DNS_MAX_PENDING_BYTES"], clock)
    return Backend(Zone(conf["DNS_ZONE"], conf["DNS_NAMESERVERS"],
                        reassembly))


def listener(path=None):
    """The socket to accept on: systemd's (socket activation), or a new
    one at `path`."""
    if path is None:
        from systemd import daemon
        fds = daemon.listen_fds()
        if len(fds) != 1:
            raise ValueError("no socket from systemd (run from "
                             "pyweb-popcon-dns.socket, or give --socket)")
        return socket.socket(fileno=fds[0])
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(MAX_CONNECTIONS)
    return sock
