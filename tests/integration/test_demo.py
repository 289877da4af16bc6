"""`make demo`, the README's main job, as a fresh checkout runs it: the
whole loop ends on a published page with its history (a smaller fleet)."""

import os
import subprocess
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_ends_on_a_published_page(tmp_path):
    top = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, os.path.join(TESTS, "demo.py")],
        env={**os.environ, "DEMO_DIR": str(top), "DEMO_HOSTS": "400"},
        capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "report sent to http://127.0.0.1:" in done.stderr + done.stdout
    assert "\nHistory: 40 days, " in done.stdout
    assert f"file://{top}/www/index.html" in done.stdout
    page = (top / "www" / "index.html").read_text()
    assert "simulated" in page.lower() and "<img" in page
    assert os.listdir(top / "spool" / "incoming") == []
