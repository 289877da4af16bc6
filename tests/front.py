"""nginx on this machine with the site pyweb-popcon-server ships
(etc/nginx/sites-available/pyweb-popcon-server), for tests and benchmarks.

The shipped file is rendered, not copied: only its ports, the receiver's
address, OUTPUT_DIR and the certificate are replaced (each must be found
exactly where expected, so a change to the site cannot slip past), and the
IPv6 listens are dropped.  It is included by a minimal nginx.conf made like
Debian's (worker_processes auto, 768 worker_connections, mime.types) whose
paths are all in a scratch directory.
"""

import os
import re
import signal
import socket
import subprocess
import time

from processes import wait_or_kill
from server_fixtures import free_ports

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = os.path.join(TOP, "etc/nginx/sites-available/pyweb-popcon-server")
NGINX = "/usr/sbin/nginx"

MAIN = """\
daemon off;
worker_processes auto;
pid {top}/nginx.pid;
error_log {top}/main-error.log;
{user}
events {{
    worker_connections 768;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {top}/body;
    proxy_temp_path {top}/proxy;
    fastcgi_temp_path {top}/fastcgi;
    uwsgi_temp_path {top}/uwsgi;
    scgi_temp_path {top}/scgi;
    include {top}/site.conf;
}}
"""


def render(text, https_port, http_port, upstream, output_dir, cert, key,
           error_log=None):
    """The shipped site for these ports and paths; `error_log`, "FILE
    LEVEL" to log to instead of the shipped /dev/null (for a control)."""
    swaps = [("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
             ("listen 80 ", f"listen 127.0.0.1:{http_port} "),
             ("server 127.0.0.1:8080 ", f"server {upstream} "),
             ("root /var/lib/pyweb-popcon-server/www;",
              f"root {output_dir};"),
             ("/etc/ssl/certs/ssl-cert-snakeoil.pem;", f"{cert};"),
             ("/etc/ssl/private/ssl-cert-snakeoil.key;", f"{key};")]
    if error_log:
        swaps.append(("error_log /dev/null;", f"error_log {error_log};"))
    for old, new in swaps:
        assert text.count(old) == 1, f"{old!r} is not once in the site"
        text = text.replace(old, new)
    text, n = re.subn(r"^ *listen \[::\]:\d+[^\n]*\n", "", text, flags=re.M)
    assert n == 2, "the site no longer listens on [::]:443 and [::]:80"
    return text


def self_signed(directory, name="receiver.test"):
    """(certificate, key) for `name`, localhost and 127.0.0.1."""
    cert, key = f"{directory}/cert.pem", f"{directory}/key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-keyout", key, "-out", cert, "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name},DNS:localhost,"
         "IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def wait_for(port, proc, timeout=20):
    """Until 127.0.0.1:`port` takes connections; False if `proc` ends or
    the time is up first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)


class Nginx:
    """nginx running the rendered site until stop(); .https and .http are
    its ports on 127.0.0.1."""

    def __init__(self, top, upstream, output_dir, cert, key, error_log=None):
        self.top = top
        os.makedirs(top, exist_ok=True)
        self.https, self.http = free_ports(2)
        with open(SITE) as f:
            site = render(f.read(), self.https, self.http, upstream,
                          output_dir, cert, key, error_log)
        with open(f"{top}/site.conf", "w") as f:
            f.write(site)
        # As root the workers would otherwise be "nobody", who cannot read
        # a test's private directories.
        user = "user root root;" if os.geteuid() == 0 else ""
        with open(f"{top}/nginx.conf", "w") as f:
            f.write(MAIN.format(top=top, user=user))
        self.proc = subprocess.Popen(
            [NGINX, "-p", top, "-e", f"{top}/main-error.log",
             "-c", f"{top}/nginx.conf"], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_for(self.https, self.proc):
            self.stop()
            raise RuntimeError("nginx did not start: " + self.main_log())

    def main_log(self):
        try:
            with open(f"{self.top}/main-error.log") as f:
                return f.read()
        except OSError:
            return ""

    def url(self, path="/", scheme="https"):
        port = self.https if scheme == "https" else self.http
        return f"{scheme}://127.0.0.1:{port}{path}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            wait_or_kill(self.proc, 30)
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
