"""The spool's gauge (how full incoming/ is, counted seldom) and the removal
of temporary files no writer is left for, on real directories."""

import logging
import os
import time

import pytest

from pyweb_popcon.server import settings, spool


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def fill(directory, n, size=100, prefix=""):
    os.makedirs(directory, exist_ok=True)
    for i in range(n):
        with open(os.path.join(directory, f"{prefix}{i:04}"), "wb") as f:
            f.write(b"x" * size)


@pytest.fixture
def top(tmp_path):
    os.makedirs(tmp_path / "incoming")
    return str(tmp_path)


def test_refuses_at_the_file_limit(top):
    gauge = spool.Gauge(top, max_files=3, max_bytes=10**9, min_free=0)
    fill(f"{top}/incoming", 2)
    assert gauge.full() is None
    gauge.add(100)                      # this process wrote the third
    assert "3 files" in gauge.full() and "SPOOL_MAX_FILES" in gauge.full()


def test_refuses_at_the_byte_limit(top):
    gauge = spool.Gauge(top, max_files=100, max_bytes=1000, min_free=0)
    fill(f"{top}/incoming", 9, size=100)
    assert gauge.full() is None
    gauge.add(100)
    assert "1000 bytes" in gauge.full() and "SPOOL_MAX_BYTES" in gauge.full()


def test_refuses_when_the_file_system_is_nearly_full(top):
    free = os.statvfs(top).f_bavail * os.statvfs(top).f_frsize
    assert spool.Gauge(top, 100, 10**9, min_free=free // 2).full() is None
    why = spool.Gauge(top, 100, 10**9, min_free=free * 2).full()
    assert "SPOOL_MIN_FREE" in why


def test_counts_seldom_and_adds_its_own_writes(top):
    """A directory of many files is not counted per request: once, then
    not again before COUNT_EVERY seconds, meanwhile adding what this
    process wrote; files others add show at the next count."""
    clock = Clock()
    gauge = spool.Gauge(top, max_files=10, max_bytes=10**9, min_free=0,
                        clock=clock)
    fill(f"{top}/incoming", 5)
    counts = []
    real_count = gauge.count
    gauge.count = lambda: (counts.append(clock.now), real_count())[1]
    for _ in range(100):
        assert gauge.full() is None
    assert counts == [1000.0]
    for _ in range(4):
        gauge.add(100)
    assert gauge.full() is None         # 9 of 10
    fill(f"{top}/incoming", 3, prefix="other-")   # another process's
    gauge.add(100)
    assert "10 files" in gauge.full()   # its own count: 5 + 5
    clock.now += spool.COUNT_EVERY
    assert gauge.full() is None         # counted again: 5 + 3 on disk
    assert gauge.counted[:2] == (8, 800)
    assert counts == [1000.0, 1000.0 + spool.COUNT_EVERY]


def test_slow_counts_are_spaced_out(top, monkeypatch):
    """Counting never takes more than COUNT_SHARE of the time."""
    clock = Clock()
    gauge = spool.Gauge(top, 10, 10**9, 0, clock=clock)
    real_listdir = os.listdir

    def slow_listdir(path):
        clock.now += 0.5                # a count that takes half a second
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", slow_listdir)
    gauge.full()
    monkeypatch.undo()
    assert gauge.due == 1000.0 + 0.5 / spool.COUNT_SHARE


def test_a_count_stats_only_files_new_to_it(top, monkeypatch):
    gauge = spool.Gauge(top, 100, 10**9, 0)
    fill(f"{top}/incoming", 5)
    gauge.count()
    fill(f"{top}/incoming", 2, size=1000, prefix="new-")
    os.unlink(f"{top}/incoming/0000")
    statted = []
    real_stat = os.stat

    def stat(path, **kw):
        statted.append(os.path.basename(path))
        return real_stat(path, **kw)

    monkeypatch.setattr(os, "stat", stat)
    gauge.count()
    monkeypatch.undo()
    assert sorted(statted) == ["new-0000", "new-0001"]
    assert gauge.counted[:2] == (6, 4 * 100 + 2 * 1000)


def test_says_once_when_refusing_starts_and_ends(top, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("pyweb_popcon"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="pyweb_popcon")
    clock = Clock()
    gauge = spool.Gauge(top, 2, 10**9, 0, clock=clock)
    fill(f"{top}/incoming", 2)
    for _ in range(50):
        assert gauge.full()
    for name in os.listdir(f"{top}/incoming"):
        os.unlink(f"{top}/incoming/{name}")
    clock.now += spool.COUNT_EVERY
    assert gauge.full() is None
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "refusing submissions", "taking submissions again (refused while"]


def test_a_missing_spool_is_an_error_not_room(tmp_path):
    with pytest.raises(FileNotFoundError):
        spool.Gauge(str(tmp_path), 10, 10**9, 0).full()


def test_stale_temporary_files_are_removed(top):
    now = time.time()
    old, recent = now - spool.STALE_SECONDS - 60, now - 60
    fill(f"{top}/tmp", 2, prefix=".tmp-old-")
    fill(f"{top}/tmp", 1, prefix=".tmp-new-")
    fill(f"{top}/incoming", 1, prefix=".tmp-old-")      # an older receiver's
    fill(f"{top}/incoming", 1, prefix="submission-")    # ingest's to take
    for directory in ("tmp", "incoming"):
        for name in os.listdir(f"{top}/{directory}"):
            when = recent if "new" in name else old
            os.utime(f"{top}/{directory}/{name}", (when, when))
    assert spool.remove_stale(top, now) == 3
    assert os.listdir(f"{top}/tmp") == [".tmp-new-0000"]
    assert os.listdir(f"{top}/incoming") == ["submission-0000"]
    assert spool.remove_stale(top, now) == 0


@pytest.mark.parametrize("text,value", [("0", 0), ("4096", 4096),
                                        ("512K", 512 * 1024),
                                        ("1G", 1024**3), ("2t", 2 * 1024**4)])
def test_sizes(text, value):
    assert settings.size(text) == value


@pytest.mark.parametrize("text", ["", "G", "1.5G", "-1", "1GB", "ten"])
def test_bad_sizes(text):
    with pytest.raises(ValueError, match="expected a size"):
        settings.size(text)
