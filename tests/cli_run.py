"""Run the client CLI in a fresh interpreter, recording socket activity.

An audit hook installed before pyweb_popcon is imported sees every socket
the process creates or connects, so "no network" is observed, not assumed.
"""

import json
import os
import pwd
import subprocess
import sys
import tempfile
from dataclasses import dataclass

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "src")

_HARNESS = """
import json, sys
events = []
sys.addaudithook(lambda name, args: name.startswith("socket.")
                 and events.append(name))
from pyweb_popcon.client.cli import main
try:
    code = main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as f:
        json.dump(events, f)
sys.exit(code)
"""


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    socket_events: list


def run_cli(args, env=None, user=None):
    """pyweb-popcon ARGS in a subprocess; `user` runs it via setpriv."""
    with tempfile.TemporaryDirectory() as scratch:
        return _run(args, env, user, scratch)


def _run(args, env, user, scratch):
    events = os.path.join(scratch, "socket-events.json")
    command = [sys.executable, "-c", _HARNESS, events, *args]
    if user:
        account = pwd.getpwnam(user)
        command = ["setpriv", f"--reuid={account.pw_uid}",
                   f"--regid={account.pw_gid}",
                   "--clear-groups", "--"] + command
        os.chmod(scratch, 0o777)
    environment = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": SRC,
                   "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8",
                   **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True,
                          env=environment, stdin=subprocess.DEVNULL,
                          timeout=120)
    if not os.path.exists(events):
        raise RuntimeError(f"the CLI did not start: {done.stderr}")
    with open(events) as f:
        return Run(done.returncode, done.stdout, done.stderr, json.load(f))
