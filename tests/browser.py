"""Debian's chromium, headless, driven over the DevTools protocol.

The protocol runs over a pipe (--remote-debugging-pipe: chromium reads
commands on its fd 3 and writes replies and events on fd 4, each a JSON
message ended by a NUL byte), so no port, no WebSocket and nothing beyond
the standard library.  A page is opened at a given window size (375 px
wide is emulated as a phone: the viewport meta tag counts), and can then
run JavaScript for assertions and take full-page screenshots.
"""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

from processes import wait_or_kill

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars",
         "--remote-debugging-pipe"]


def available():
    return os.access(CHROMIUM, os.X_OK)


def _high(fds):
    """The descriptors moved to 10 and above, clear of the 3 and 4 they
    become in chromium."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved


class Browser:
    """One chromium process; use as a context manager."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="ppc-chromium-")
        to_chromium, self.commands = _high(os.pipe())
        self.replies, from_chromium = _high(os.pipe())
        # bash puts the pipe ends at fds 3 and 4 for chromium (dash takes
        # one-digit descriptors only).
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_chromium} '
             f'4>&{from_chromium} {to_chromium}<&- {from_chromium}>&-',
             CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}"],
            pass_fds=(to_chromium, from_chromium), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_chromium)
        os.close(from_chromium)
        self.last_id, self.buffer, self.messages = 0, b"", []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError):
            pass
        wait_or_kill(self.proc, 30)
        self.proc.stderr.close()
        os.close(self.commands)
        os.close(self.replies)
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method, session=None, **params):
        """The result of one command, or RuntimeError with its error."""
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        sent = self.last_id
        reply = self.wait(lambda m: m.get("id") == sent)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait(self, match, timeout=120):
        """The first message (reply or event) that `match`es."""
        deadline = time.monotonic() + timeout
        while True:
            for i, message in enumerate(self.messages):
                if match(message):
                    return self.messages.pop(i)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.replies], [], [],
                                              left)[0]:
                raise RuntimeError("chromium did not answer in time")
            chunk = os.read(self.replies, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium ended: " + self.proc.stderr.read(
                    ).decode(errors="replace")[-2000:])
            *whole, self.buffer = (self.buffer + chunk).split(b"\0")
            self.messages += [json.loads(m) for m in whole]

    def events(self, session, method):
        """The events of `method` received so far for `session`."""
        return [m["params"] for m in self.messages
                if m.get("sessionId") == session and m.get("method") == method]

    def open(self, url, width, height=900):
        """A Page showing `url` in a window `width` px wide, loaded."""
        target = self.send("Target.createTarget", url="about:blank")
        session = self.send("Target.attachToTarget",
                            targetId=target["targetId"],
                            flatten=True)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride", session, width=width,
                  height=height, deviceScaleFactor=1, mobile=width < 600)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session)
        self.send("Page.navigate", session, url=url)
        self.wait(lambda m: m.get("sessionId") == session
                  and m.get("method") == "Page.loadEventFired")
        return Page(self, session)


class Page:
    def __init__(self, browser, session):
        self.browser, self.session = browser, session

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page."""
        result = self.browser.send("Runtime.evaluate", self.session,
                                   expression=expression,
                                   returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self):
        """Errors the page logged: failed loads, exceptions, console."""
        found = [e["entry"]["text"] for e in self.browser.events(
            self.session, "Log.entryAdded") if e["entry"]["level"] == "error"]
        found += [e["exceptionDetails"]["text"] for e in self.browser.events(
            self.session, "Runtime.exceptionThrown")]
        return found

    def screenshot(self, path):
        """The whole page, however long, as a PNG file."""
        size = self.browser.send("Page.getLayoutMetrics",
                                 self.session)["cssContentSize"]
        shot = self.browser.send(
            "Page.captureScreenshot", self.session, format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"],
                  "height": size["height"], "scale": 1})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
