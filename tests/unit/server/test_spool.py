"""The spool on real directories: the receivers' gauge (how full incoming/
is, counted seldom), the removal of temporary files no writer is left
for, the quarantine whatever its entries are, and the spool's one owner."""

import ast
import fcntl
import logging
import os
import re
import time

import pytest

from pyweb_popcon.server import settings
from pyweb_popcon.server.intake import limits
from pyweb_popcon.server.spool import STALE_SECONDS, Spool


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
    gauge = limits.Gauge(Spool(top), max_files=3, max_bytes=10**9,
                         min_free=0)
    fill(f"{top}/incoming", 2)
    assert gauge.full() is None
    gauge.add(100)                      # this process wrote the third
    assert "3 files" in gauge.full() and "SPOOL_MAX_FILES" in gauge.full()


def test_refuses_at_the_byte_limit(top):
    gauge = limits.Gauge(Spool(top), max_files=100, max_bytes=1000,
                         min_free=0)
    fill(f"{top}/incoming", 9, size=100)
    assert gauge.full() is None
    gauge.add(100)
    assert "1000 bytes" in gauge.full() and "SPOOL_MAX_BYTES" in gauge.full()


def test_refuses_when_the_file_system_is_nearly_full(top):
    free = os.statvfs(top).f_bavail * os.statvfs(top).f_frsize
    assert limits.Gauge(Spool(top), 100, 10**9,
                        min_free=free // 2).full() is None
    why = limits.Gauge(Spool(top), 100, 10**9, min_free=free * 2).full()
    assert "SPOOL_MIN_FREE" in why


def test_counts_seldom_and_adds_its_own_writes(top):
    """A directory of many files is not counted per request: once, then
    not again before COUNT_EVERY seconds, meanwhile adding what this
    process wrote; files others add show at the next count."""
    clock = Clock()
    gauge = limits.Gauge(Spool(top), max_files=10, max_bytes=10**9,
                         min_free=0, clock=clock)
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
    clock.now += limits.COUNT_EVERY
    assert gauge.full() is None         # counted again: 5 + 3 on disk
    assert gauge.counted[:2] == (8, 800)
    assert counts == [1000.0, 1000.0 + limits.COUNT_EVERY]


def test_slow_counts_are_spaced_out(top, monkeypatch):
    """Counting never takes more than COUNT_SHARE of the time."""
    clock = Clock()
    gauge = limits.Gauge(Spool(top), 10, 10**9, 0, clock=clock)
    real_listdir = os.listdir

    def slow_listdir(path):
        clock.now += 0.5                # a count that takes half a second
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", slow_listdir)
    gauge.full()
    monkeypatch.undo()
    assert gauge.due == 1000.0 + 0.5 / limits.COUNT_SHARE


def test_a_count_stats_only_files_new_to_it(top, monkeypatch):
    gauge = limits.Gauge(Spool(top), 100, 10**9, 0)
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


def test_says_once_when_refusing_starts_and_ends(top, caplog):
    caplog.set_level(logging.WARNING, logger="pyweb_popcon")
    clock = Clock()
    gauge = limits.Gauge(Spool(top), 2, 10**9, 0, clock=clock)
    fill(f"{top}/incoming", 2)
    for _ in range(50):
        assert gauge.full()
    for name in os.listdir(f"{top}/incoming"):
        os.unlink(f"{top}/incoming/{name}")
    clock.now += limits.COUNT_EVERY
    assert gauge.full() is None
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "refusing submissions", "taking submissions again (refused while"]


def test_a_missing_spool_is_an_error_not_room(tmp_path):
    with pytest.raises(FileNotFoundError):
        limits.Gauge(Spool(str(tmp_path)), 10, 10**9, 0).full()


def test_stale_temporary_files_are_removed(top):
    now = time.time()
    old, recent = now - STALE_SECONDS - 60, now - 60
    fill(f"{top}/tmp", 2, prefix=".tmp-old-")
    fill(f"{top}/tmp", 1, prefix=".tmp-new-")
    fill(f"{top}/incoming", 1, prefix=".tmp-old-")      # an older receiver's
    fill(f"{top}/incoming", 1, prefix="submission-")    # ingest's to take
    for directory in ("tmp", "incoming"):
        for name in os.listdir(f"{top}/{directory}"):
            when = recent if "new" in name else old
            os.utime(f"{top}/{directory}/{name}", (when, when))
    assert Spool(top).remove_stale(now) == 3
    assert os.listdir(f"{top}/tmp") == [".tmp-new-0000"]
    assert os.listdir(f"{top}/incoming") == ["submission-0000"]
    assert Spool(top).remove_stale(now) == 0


# -- the quarantine, whatever its entries are -------------------------------

DAY_NS = 86_400 * 10**9


@pytest.fixture
def held(top, tmp_path):
    """A spool whose quarantine holds a file, a directory (a file and a
    link out in it), a link to a directory and a dot-FIFO, as ingest
    leaves them; and the directory outside the links point to."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"not the spool's")
    incoming = f"{top}/incoming"
    fill(incoming, 1, prefix="garbage-")
    os.mkdir(f"{incoming}/a-directory")
    fill(f"{incoming}/a-directory", 1, prefix="inside-")
    os.symlink(outside, f"{incoming}/a-directory/link-out")
    os.symlink(outside, f"{incoming}/a-link")
    os.mkfifo(f"{incoming}/.a-fifo")
    spool = Spool(top)
    assert spool.move_to_quarantine("garbage-0000", "not-openpgp", "x")
    for name in ("a-directory", "a-link", ".a-fifo"):
        assert spool.move_to_quarantine(name, "not-a-file", "as it is")
    return spool, outside


def test_every_quarantined_entry_is_counted(held):
    spool, _ = held
    assert spool.quarantined() == {"garbage-0000": "not-openpgp",
                                   "a-directory": "not-a-file",
                                   "a-link": "not-a-file",
                                   ".a-fifo": "not-a-file"}
    assert spool.by_reason() == {"not-a-file": 3, "not-openpgp": 1}


def test_requeue_moves_entries_back_whole(held):
    spool, outside = held
    assert spool.requeue("not-a-file") == 3
    assert sorted(os.listdir(spool.incoming)) == [
        ".a-fifo", "a-directory", "a-link"]
    assert sorted(os.listdir(f"{spool.incoming}/a-directory")) == [
        "inside-0000", "link-out"]
    assert os.readlink(f"{spool.incoming}/a-link") == str(outside)
    assert sorted(os.listdir(spool.quarantine)) == [
        "garbage-0000", "garbage-0000.reason"]


def test_expiry_takes_every_old_entry_with_its_reason(held):
    """Old entries go with their .reason, whatever they are, links never
    followed; a recent one stays with its own; an old .reason left
    alone (a requeue cut short) goes, a recent one stays."""
    spool, outside = held
    now = time.time_ns()
    q = spool.quarantine
    for name in ("alone-old", "alone-new"):
        with open(f"{q}/{name}.reason", "w") as f:
            f.write("wrong-key: requeued, then killed\n")
    old = now - 21 * DAY_NS
    for name in ("a-directory", "a-link", ".a-fifo", "alone-old.reason"):
        os.utime(f"{q}/{name}", ns=(old, old), follow_symlinks=False)
    assert spool.expire(now - 20 * DAY_NS) == 3
    assert sorted(os.listdir(q)) == ["alone-new.reason", "garbage-0000",
                                     "garbage-0000.reason"]
    assert os.listdir(outside) == ["precious"]
    assert (outside / "precious").read_bytes() == b"not the spool's"
    assert spool.expire(now + DAY_NS) == 1
    assert os.listdir(q) == []


def test_an_empty_spool_has_nothing_to_count_requeue_or_expire(tmp_path):
    spool = Spool(str(tmp_path))
    assert spool.quarantined() == {} and spool.requeue() == 0
    assert spool.expire(time.time_ns()) == 0
    assert spool.backlog() == (0, None)


def test_the_ingest_lock(top):
    """Only ingest makes the lock's file; while one holds it, no one
    else can."""
    spool = Spool(top)
    path = os.path.join(top, Spool.LOCK)
    with spool.ingest_lock(create=False):
        assert not os.path.exists(path)
    with spool.ingest_lock():
        fd = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    with spool.ingest_lock(create=False):
        assert os.path.exists(path)


# -- one owner -------------------------------------------------------------

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")
OWNER = os.path.join(SRC, "pyweb_popcon", "server", "spool.py")
# A directory or file name of the spool, as a string in code.
SPOOL_LITERAL = re.compile(r"(?<![\w.-])(incoming|tmp|quarantine)(?![\w-])"
                           r"|ingest\.lock|\.reason\b")


def spool_literals(path):
    """(line, text) of each string in `path`'s code (not its docstrings,
    which are prose) that names a part of the spool."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    prose = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) \
                and ast.get_docstring(node) is not None:
            prose.add(id(node.body[0].value))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in prose and SPOOL_LITERAL.search(node.value)]


def test_the_spool_has_one_owner():
    """No module but spool.py names the spool's directories, its lock or
    the .reason suffix: what is said to people is built from Spool."""
    found = {}
    for directory, _, names in os.walk(SRC):
        for name in names:
            path = os.path.join(directory, name)
            if name.endswith(".py") and not os.path.samefile(path, OWNER):
                found.update({f"{os.path.relpath(path, SRC)}:{line}": text
                              for line, text in spool_literals(path)})
    assert found == {}
    # The check finds them where they are.
    assert sorted(text for _, text in spool_literals(OWNER)) == [
        ".reason", "incoming", "ingest.lock", "quarantine", "tmp"]


@pytest.mark.parametrize("text,value", [("0", 0), ("4096", 4096),
                                        ("512K", 512 * 1024),
                                        ("1G", 1024**3), ("2t", 2 * 1024**4)])
def test_sizes(text, value):
    assert settings.size(text) == value


@pytest.mark.parametrize("text", ["", "G", "1.5G", "-1", "1GB", "ten"])
def test_bad_sizes(text):
    with pytest.raises(ValueError, match="expected a size"):
        settings.size(text)
