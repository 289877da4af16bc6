"""Stopping the helper processes tests start (nginx, Chromium, PowerDNS,
unbound): asked first, killed if they do not go in time."""

import subprocess


def wait_or_kill(proc, seconds):
    """Wait for `proc` to end, at most `seconds`; then kill it."""
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
