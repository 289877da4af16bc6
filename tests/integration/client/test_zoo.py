"""The zoo (tests/zoo.py): every way of installing a framework, made by the
real installers, and `show --root` held against what each environment
lists itself, layout by layout, with homes not chosen and chosen.

The table of what was expected and found is printed, and written to
$ZOO_TABLE when set (else zoo-table.md in the test's temporary directory).
"""

import collections
import json
import os

import pytest

import zoo
from cli_run import run_cli

pytestmark = [pytest.mark.skipif(
    os.geteuid() != 0, reason="dpkg --root runs the package's maintainer "
    "scripts chrooted into the tree: root only"),
    # The first run fills the cache from PyPI and Debian.
    pytest.mark.timeout(1800)]

# Both runs keep the same directories out; the second also chooses homes.
EXCLUDE = f'SCAN_EXCLUDE="{" ".join(zoo.EXCLUDED)}"\n'
RUNS = {"default": EXCLUDE, "homes chosen": EXCLUDE + 'SCAN_HOMES="yes"\n'}


@pytest.fixture(scope="module")
def zoo_tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("zoo")
    return str(base / "root"), zoo.build(base / "root", base / "scratch")


def _found(top, config):
    """{(name, version, via, python): envs} as `show` reports, or the
    reason there is no report."""
    with open(os.path.join(top, "etc/pyweb-popcon.conf"), "w") as f:
        f.write(config)
    run = run_cli(["show", "--root", top])
    if run.code:
        return f"show exited {run.code}: {run.stderr.strip()}"
    return {(e["name"], e["version"], e["via"], e.get("python")): e["envs"]
            for e in json.loads(run.stdout)["frameworks"]}


@pytest.fixture(scope="module")
def shown(zoo_tree, tmp_path_factory):
    """(layouts, {run: found}), the table printed and written."""
    top, layouts = zoo_tree
    found = {run: _found(top, config) for run, config in RUNS.items()}
    table = render(layouts, found)
    print("\n" + table)
    path = os.environ.get("ZOO_TABLE") or str(
        tmp_path_factory.mktemp("table") / "zoo-table.md")
    with open(path, "w") as f:
        f.write(table)
    return layouts, found


def counted(layout, run):
    return not layout.control and (run == "homes chosen" or not layout.home)


def expected(layouts, run):
    """{(name, version, via, python): envs} that `run` must report."""
    return dict(collections.Counter(
        key for layout in layouts if counted(layout, run)
        for key in layout.expected))


def surplus(layouts, run, found):
    """What `run` found beyond what the layouts that count account for."""
    want = expected(layouts, run)
    return {key: envs - want.get(key, 0) for key, envs in found.items()
            if envs > want.get(key, 0)}


def found_for(layout, layouts, run, found):
    """The entries `run` found of a layout's frameworks at its versions.

    A control may hold copies of what layouts hold (a cache of their
    wheels): it answers for the rest, and for none of what they account
    for; a surplus of theirs shows in the layouts' envs counts."""
    pairs = {key[:2] for key in layout.expected}
    if layout.control:
        found = surplus(layouts, run, found)
        pairs -= {key[:2] for other in layouts if not other.control
                  for key in other.expected}
    return {key: envs for key, envs in found.items() if key[:2] in pairs}


def _entry(key, envs=1):
    name, version, via, python = key
    return (f"{name} {version} {via} {python or 'none'}"
            + (f" x{envs}" if envs != 1 else ""))


def _cell(layout, layouts, run, found):
    """What `run` found of `layout`, "-" for nothing, after MISSING,
    WRONG (found otherwise) or COUNTED (found, and must not be) where
    that is not what it must find."""
    if isinstance(found, str):
        return "show failed"
    mine = found_for(layout, layouts, run, found)
    want = dict.fromkeys(layout.expected, 1) if counted(layout, run) else {}
    text = "; ".join(_entry(k, n) for k, n in sorted(mine.items(),
                                                     key=str)) or "-"
    if mine == want:
        return text
    if not mine:
        return "MISSING"
    return ("WRONG: " if want else "COUNTED: ") + text


def render(layouts, found):
    """The table issue 20 asks for, in Markdown."""
    lines = ["| layout | path | expected | found (default) | "
             "found (homes chosen) |", "|---|---|---|---|---|"]
    for layout in layouts:
        if layout.control:
            want = "never counted (holds " + ", ".join(
                " ".join(p) for p in sorted(layout.expected)) + ")"
        else:
            want = "; ".join(_entry(k) for k in sorted(layout.expected,
                                                       key=str))
            want += " (homes chosen only)" if layout.home else ""
        lines.append(f"| {layout.name} | {layout.path} | {want} | "
                     + " | ".join(_cell(layout, layouts, run, found[run])
                                  for run in RUNS) + " |")
    for run, result in found.items():
        if isinstance(result, str):
            lines.append(f"\n{run}: {result}")
    return "\n".join(lines) + "\n"


def _wrong(layouts, run, found, controls):
    """A line for each layout (or each control) that `run` did not find
    as it must."""
    if isinstance(found, str):
        return [found]
    lines = []
    for layout in layouts:
        cell = _cell(layout, layouts, run, found)
        if layout.control == controls and cell.startswith(
                ("MISSING", "WRONG", "COUNTED")):
            want = (sorted(layout.expected) if counted(layout, run)
                    else "nothing")
            lines.append(f"{layout.name} ({layout.path}): expected {want}, "
                         f"{cell}")
    return lines


@pytest.mark.parametrize("run", RUNS)
def test_each_layout_is_found_as_its_environment_lists_it(shown, run):
    """Each layout that counts in this run is found, with its via and
    Python; a home's layouts only when homes are chosen."""
    layouts, found = shown
    wrong = _wrong(layouts, run, found[run], controls=False)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("run", RUNS)
def test_what_is_never_counted_adds_nothing(shown, run):
    """Container storage, Trash, caches, a build tree and SCAN_EXCLUDE:
    none of what they hold is counted, homes chosen or not."""
    layouts, found = shown
    wrong = _wrong(layouts, run, found[run], controls=True)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("run", RUNS)
def test_the_report_is_exactly_the_oracles_sum(shown, run):
    """Entries aggregate by (name, version, via, python): each envs count
    is the number of layouts holding that entry, and nothing else is
    reported."""
    layouts, found = shown
    assert found[run] == expected(layouts, run)
