#!/usr/bin/python3
"""`make demo`: the whole loop on this one machine, in a scratch directory.

A throw-away server key, the receiver on 127.0.0.1, this machine's own
report collected, encrypted and submitted, then ingest and aggregate.
Nothing is written outside DEMO_DIR (default /var/tmp/pyweb-popcon-demo):
the client looks at this machine through a --root whose system paths are
symbolic links to the real ones, and keeps its config and state there.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
ENV.pop("DO_NOT_TRACK", None)
PYTHON = "/usr/bin/python3"
# What the client reads of the machine; everything else stays in the demo.
SEEN = ("/usr", "/srv", "/opt", "/var/www", "/var/lib/dpkg", "/etc/os-release",
        "/etc/machine-id", "/etc/dpkg")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server(conf, *args, **kw):
    return subprocess.run([PYTHON, "-m", "pyweb_popcon.server", "--config",
                           conf, *args], env=ENV, check=True, **kw)


def client(root, *args):
    return subprocess.run([PYTHON, "-m", "pyweb_popcon.client", "--root", root,
                           *args], env=ENV, check=True)


def this_machine(top):
    """A --root that shows this machine but keeps pyweb-popcon's files."""
    root = os.path.join(top, "machine")
    for path in SEEN:
        if os.path.exists(path):
            link = root + path
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(path, link)
    return root


def wait_for(url, receiver):
    for _ in range(100):
        if receiver.poll() is not None:
            raise SystemExit("the receiver did not start")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the receiver does not answer at {url}")


def main():
    top = os.environ.get("DEMO_DIR", "/var/tmp/pyweb-popcon-demo")
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)
    listen = f"127.0.0.1:{free_port()}"
    conf = os.path.join(top, "server.conf")
    with open(conf, "w") as f:
        # One machine: a MIN_HOSTS of 5 would fold everything into "other".
        f.write(f'SPOOL_DIR="{top}/spool"\nSTATE_DIR="{top}/state"\n'
                f'OUTPUT_DIR="{top}/www"\nLISTEN="{listen}"\nMIN_HOSTS="1"\n')
    root = this_machine(top)
    keyring = os.path.join(root, "server-key.asc")
    print("== a throw-away server key", flush=True)
    fingerprint = server(conf, "keygen", "--export", keyring,
                         capture_output=True, text=True).stdout.split()[-1]
    print(fingerprint)
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    with open(os.path.join(root, "etc/pyweb-popcon.conf"), "w") as f:
        f.write(f'PARTICIPATE="yes"\nSUBMIT_URL="http://{listen}/submit"\n'
                f'KEYRING="/server-key.asc"\nKEY_FINGERPRINTS="{fingerprint}"\n')

    print(f"== the receiver on {listen}", flush=True)
    receiver = subprocess.Popen([PYTHON, "-m", "pyweb_popcon.server",
                                 "--config", conf, "serve"], env=ENV,
                                stdin=subprocess.DEVNULL)
    try:
        wait_for(f"http://{listen}/health", receiver)
        print("== this machine's report, collected, encrypted, submitted",
              flush=True)
        client(root, "submit", "--force")
        client(root, "history", "1")
        print("== ingest, aggregate", flush=True)
        server(conf, "ingest")
        server(conf, "aggregate")
        print("== the headline table", flush=True)
        server(conf, "stats")
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
    print(f"\nThe published page: {top}/www/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
