"""Submission over DNS against HTTPS, in the same run, on the same cores:
a typical report (four frameworks, encrypted to the server key) sent by
CLIENTS concurrent senders for SECONDS each, first as DNS queries through
the C library's resolver, unbound (qname minimisation, 0x20), PowerDNS
with the shipped configuration and the server's handler into the spool;
then as HTTPS POSTs through the shipped nginx site to the receiver under
gunicorn.  The client's own code sends both ways (dns.deliver,
https.deliver).  Prints completed submissions per second each way and
their ratio, the client's queries per submission and the queries the
resolver sent the server for them (qname minimisation asks for the empty
non-terminals first), and checks every completed submission is in the
spool, whole.  Needs root (the DNS stack, see tests/dns_stack.py).
Run: make bench.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dns_stack  # noqa: E402
from front import Nginx, self_signed  # noqa: E402
from pyweb_popcon import dnswire, openpgp  # noqa: E402
from pyweb_popcon.client import delivery, dns, https, settings  # noqa: E402
from pyweb_popcon.client.paths import Root  # noqa: E402
from pyweb_popcon.common.conffile import Config  # noqa: E402
from server_fixtures import (ENV, PYTHON, Server, encryptor,  # noqa: E402
                             make_report)

SECONDS = int(os.environ.get("BENCH_SECONDS", 30))
CLIENTS = 8
DEFAULT_ZONE = settings.KEYS["SUBMIT_ZONE"].default
FRAMEWORKS = (("django", "4.2.11", "deb"), ("flask", "3.0.3", "venv"),
              ("fastapi", "0.110.0", "venv"), ("starlette", "0.36.3", "venv"))


def client_config(**values):
    chosen = {k: key.check(key.default) for k, key in settings.KEYS.items()}
    chosen.update(values)
    return Config(chosen, [], {})


def senders(send, seconds):
    """CLIENTS threads calling send() for `seconds`: (completed,
    failed, the senders' results)."""
    results, lock = [], threading.Lock()
    deadline = time.monotonic() + seconds

    def loop():
        while time.monotonic() < deadline:
            result = send()
            with lock:
                results.append(result)

    threads = [threading.Thread(target=loop) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def worker(body_path, seconds):
    """In the client's mount namespace: send over DNS, print the figures."""
    with open(body_path, "rb") as f:
        body = f.read()
    message = openpgp.dearmor(body)
    chunks = len(dnswire.split(message, dns_stack.ZONE))

    def send():
        exchange = dns.Exchange(dns_stack.ZONE,
                                dnswire.split(message, dns_stack.ZONE),
                                delivery.LIMITS)
        return exchange.run().result, exchange.queries

    start = time.monotonic()
    results = senders(send, seconds)
    took = time.monotonic() - start
    print(json.dumps({"sent": sum(r == delivery.SENT for r, _ in results),
                      "failed": sum(r != delivery.SENT for r, _ in results),
                      "queries": sum(q for _, q in results),
                      "chunks": chunks, "seconds": took}))


def over_dns(srv, top, body):
    path = os.path.join(top, "body.asc")
    with open(path, "wb") as f:
        f.write(body)
    with dns_stack.running(srv, ENV, top=os.path.join(top, "dns")) as stack:
        before = len(srv.incoming_files())
        out = subprocess.run(
            stack.client_argv([PYTHON, os.path.abspath(__file__), "--worker",
                               path, str(SECONDS)]),
            env=ENV, capture_output=True, text=True, check=True)
        figures = json.loads(out.stdout.splitlines()[-1])
        figures["server queries"] = len(stack.proxy.seen)
    figures["stored"] = len(srv.incoming_files()) - before
    return figures


def over_https(srv, top, body):
    cert, key = self_signed(top)
    conf = client_config()
    with open(os.path.join(top, "receiver.log"), "wb") as log:
        receiver = subprocess.Popen(
            [PYTHON, "-m", "pyweb_popcon.server", "--config", srv.conf,
             "serve"], env=ENV, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    try:
        time.sleep(2)
        with Nginx(os.path.join(top, "nginx"), f"127.0.0.1:{srv.port}",
                   srv.output, cert, key) as nginx:
            conf.values["SUBMIT_URL"] = nginx.url("/submit")
            conf.values["CA_FILE"] = cert
            before = len(srv.incoming_files())
            start = time.monotonic()
            results = senders(
                lambda: https.deliver(body, conf, Root()).result, SECONDS)
            took = time.monotonic() - start
    finally:
        receiver.send_signal(signal.SIGINT)
        receiver.wait(30)
    return {"sent": results.count(delivery.SENT),
            "failed": len(results) - results.count(delivery.SENT),
            "seconds": took, "stored": len(srv.incoming_files()) - before}


def main():
    why = dns_stack.available()
    if why:
        sys.exit(f"bench_dns: {why}")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        os.environ.pop(name, None)
    top = tempfile.mkdtemp(prefix="bench-dns-")
    try:
        srv = Server(top + "/srv")
        with open(srv.conf, "a") as f:      # the spool is never emptied
            f.write('SPOOL_MAX_FILES="100000000"\nSPOOL_MAX_BYTES="1T"\n')
        report = make_report(frameworks=FRAMEWORKS)
        body = encryptor().encrypt(report)
        size = len(openpgp.dearmor(body))
        print(f"a typical report: {len(report)} bytes of JSON, {size} bytes "
              f"of OpenPGP message ({len(body)} armored); {CLIENTS} "
              f"concurrent senders, {SECONDS} s each way, on "
              f"{len(os.sched_getaffinity(0))} cores; "
              f"{len(dnswire.split(openpgp.dearmor(body), DEFAULT_ZONE))} "
              f"chunks under the default SUBMIT_ZONE {DEFAULT_ZONE}")
        dns = over_dns(srv, top, body)
        https = over_https(srv, top, body)
        dns_rate = dns["sent"] / dns["seconds"]
        https_rate = https["sent"] / https["seconds"]
        print(f"DNS (unbound, PowerDNS, handler): {dns_rate:.1f} "
              f"submissions/s, {dns['failed']} failed; {dns['chunks']} "
              f"chunks a report, {dns['queries'] / max(dns['sent'], 1):.1f} "
              f"client queries and "
              f"{dns['server queries'] / max(dns['sent'], 1):.1f} queries "
              f"from the resolver to the server per submission")
        print(f"HTTPS (nginx, gunicorn): {https_rate:.1f} submissions/s, "
              f"{https['failed']} failed; 1 request per submission")
        print(f"ratio: DNS completes {dns_rate / https_rate:.2f}x the "
              f"submissions of HTTPS per second")
        if dns["stored"] < dns["sent"] or https["stored"] < https["sent"]:
            sys.exit("FAIL: a completed submission is missing from the spool")
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], float(sys.argv[3]))
    else:
        main()
