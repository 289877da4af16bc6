"""The architecture's rules, read from the source (DESIGN.md, data flow).

Imports are read statically and followed transitively: in this project's
modules every import counts, those inside functions included (a lazy
import still runs when its function does); in the standard library and
other packages, the imports a module runs when it is loaded (not those
inside their functions, which this project never calls through, nor their
lazy imports, Python 3.15's, which run as late).  A rule that breaks fails
with the chain of imports that breaks it.  No project module imports
itself again through others: a cycle fails, printed.
"""

import ast
import configparser
import importlib.metadata
import importlib.util
import os
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "src")
PACKAGE = "pyweb_popcon"
SETUP_CFG = os.path.join(os.path.dirname(SRC), "setup.cfg")

NETWORK = ("requests", "http.client", "socket", "urllib",
           "pyweb_popcon.client.https", "pyweb_popcon.client.dns")
SECRETS = ("gnupg", "pyweb_popcon.server.keyholder",
           "pyweb_popcon.server.store", "sqlite3", "psycopg", "matplotlib",
           "pyweb_popcon.server.publish.charts")
# The receiver's process must not even name where the key is kept.
KEY_NAMES = ("gnupg_home",)
SERVER = PACKAGE + ".server"
# What the modules under a package (DESIGN.md's trust boundaries) never
# reach: {package: forbidden}.
PACKAGE_RULES = {
    f"{SERVER}.intake": (f"{SERVER}.keyholder", f"{SERVER}.store",
                         f"{SERVER}.publish", "gnupg", "sqlite3", "psycopg"),
    f"{SERVER}.publish": (f"{SERVER}.intake", f"{SERVER}.keyholder"),
    f"{SERVER}.store": (f"{SERVER}.intake", f"{SERVER}.keyholder",
                        f"{SERVER}.publish", f"{SERVER}.admin"),
}


def _source(name, src=SRC):
    """(path, is a package) of module `name`'s Python source, or None;
    this project's modules are read under `src`."""
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        base = os.path.join(src, *name.split("."))
        for path, package in ((os.path.join(base, "__init__.py"), True),
                              (base + ".py", False)):
            if os.path.exists(path):
                return path, package
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not (spec.origin or "").endswith(".py"):
        return None     # built in, an extension, or a namespace
    return spec.origin, spec.submodule_search_locations is not None


def _statements(tree, everywhere):
    """The nodes whose imports count: all, or those run at load time."""
    if everywhere:
        yield from ast.walk(tree)
        return
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        # Python 3.15's "lazy import" runs where the name is first used,
        # as a function's import does (3.15's collections has heapq so).
        if getattr(node, "is_lazy", 0):
            continue
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                 ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))


def _imported(node, module, is_package, src):
    """Module names an Import or ImportFrom node loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        parts = module.split(".")
        keep = len(parts) - node.level + (1 if is_package else 0)
        base = ".".join(parts[:keep] + ([node.module] if node.module else []))
    else:
        base = node.module
    # "from a import b" loads a, and a.b when b is a module.
    return [base] + [f"{base}.{alias.name}" for alias in node.names
                     if _source(f"{base}.{alias.name}", src)]


def _with_parents(name):
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


class Graph:
    """Static imports of this project (the tree under `src`) and, as
    loaded, of what it uses."""

    def __init__(self, src=SRC):
        self.src = src
        self.trees = {}

    def tree(self, name):
        if name not in self.trees:
            found = _source(name, self.src)
            if found is None:
                self.trees[name] = None
            else:
                with open(found[0], "rb") as f:
                    self.trees[name] = (ast.parse(f.read()), found[1])
        return self.trees[name]

    def edges(self, name, nodes=None):
        """Modules `name` imports (from `nodes`, or from all it runs)."""
        found = self.tree(name)
        if found is None:
            return []
        tree, is_package = found
        if nodes is None:
            nodes = _statements(tree, name.startswith(PACKAGE))
        out = []
        for node in nodes:
            for target in _imported(node, name, is_package, self.src):
                out += [t for t in _with_parents(target) if t not in out]
        return out

    def dependencies(self, name):
        """What `name` depends on: its edges but its own packages, which
        Python loads before it whatever it imports (a package importing
        its submodules is no cycle), unless it names them itself."""
        found = self.tree(name)
        tree, is_package = found if found else (None, False)
        named = {t for node in (ast.walk(tree) if tree else ())
                 for t in _imported(node, name, is_package, self.src)}
        own = set(_with_parents(name)[:-1])
        return [t for t in self.edges(name) if t not in own or t in named]

    def reach(self, roots):
        """{module: the module that first imported it} from `roots`, where
        a root is a module name or (module, its nodes to follow)."""
        parent, queue = {}, []
        for root in roots:
            name, nodes = root if isinstance(root, tuple) else (root, None)
            parent.setdefault(name, None)
            for target in self.edges(name, nodes):
                if target not in parent:
                    parent[target] = name
                    queue.append(target)
        while queue:
            name = queue.pop(0)
            for target in self.edges(name):
                if target not in parent:
                    parent[target] = name
                    queue.append(target)
        return parent


GRAPH = Graph()


def chain(parent, name):
    links = [name]
    while parent[links[-1]] is not None:
        links.append(parent[links[-1]])
    return " -> ".join(reversed(links))


def violations(roots, forbidden, graph=GRAPH):
    """The import chains from `roots` to any module under `forbidden`."""
    parent = graph.reach(roots)
    return [chain(parent, name) for name in sorted(parent)
            if any(name == f or name.startswith(f + ".") for f in forbidden)]


def project_modules(under, src=SRC):
    top = os.path.join(src, *under.split("."))
    found = []
    for directory, _, names in os.walk(top):
        package = os.path.relpath(directory, src).replace(os.sep, ".")
        found += [package if n == "__init__.py" else f"{package}.{n[:-3]}"
                  for n in names if n.endswith(".py")]
    return sorted(found)


def cycles(graph, modules):
    """One shortest import cycle, "a -> b -> a", through each group of
    `modules` that import each other."""
    inside = set(modules)

    def paths(start):
        """{module: the one it was reached from} from `start`, BFS."""
        parent, queue = {start: None}, [start]
        while queue:
            name = queue.pop(0)
            for target in graph.dependencies(name):
                if target in inside and target not in parent:
                    parent[target] = name
                    queue.append(target)
        return parent

    reached = {m: paths(m) for m in sorted(inside)}
    found, seen = [], set()
    for start in sorted(inside):
        if start in seen:
            continue
        group = {m for m in reached[start] if start in reached[m]}
        seen |= group
        # The shortest way back: from the group's member that imports
        # `start` and is nearest to it.
        back = [m for m in reached[start] if m in group
                and start in graph.dependencies(m) and m != start]
        if back:
            last = min(back, key=lambda m: len(chain(reached[start], m)))
            found.append(f"{chain(reached[start], last)} -> {start}")
    return found


def declared(extras):
    """The distributions setup.cfg declares: install_requires, `extras`."""
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += cfg["options.extras_require"][extra].splitlines()
    return {canonicalize_name(Requirement(line).name)
            for line in lines if line.strip()}


def unlisted_owner(top):
    """[the distribution named like module `top`] when it lists no files
    (packages_distributions() cannot see it: trixie's python3-packaging,
    -jinja2 and -matplotlib keep neither RECORD nor top_level.txt)."""
    try:
        dist = importlib.metadata.distribution(top)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is None or dist.files is not None:
        return [f"{top} (not installed)"]
    return [dist.metadata["Name"]]


def undeclared(side, extras):
    """Chains to what the modules `side` reaches import from outside the
    standard library and setup.cfg does not declare (install_requires and
    `extras`); the installed distributions say which module is whose."""
    parent = GRAPH.reach(project_modules(f"{PACKAGE}.{side}"))
    owners = importlib.metadata.packages_distributions()
    wanted = declared(extras)
    found = []
    for name in sorted(m for m in parent if m.startswith(PACKAGE)):
        for top in sorted({t.split(".")[0] for t in GRAPH.edges(name)}):
            if top == PACKAGE or top in sys.stdlib_module_names:
                continue
            dists = owners.get(top) or unlisted_owner(top)
            if not any(canonicalize_name(d) in wanted for d in dists):
                found.append(f"{chain(parent, name)} -> {top} "
                             f"({', '.join(dists)})")
    return found


def _functions(name):
    tree, _ = GRAPH.tree(name)
    return {node.name: node for node in tree.body
            if isinstance(node, ast.FunctionDef)}


def cli_path(name, commands):
    """The server CLI as `commands` run it: its load-time statements, then
    the functions main and the commands call, by name, transitively."""
    tree, _ = GRAPH.tree(name)
    functions = _functions(name)
    loaded = [n for n in _statements(tree, False)
              if not isinstance(n, ast.FunctionDef)]
    wanted, seen = ["main", *commands], set()
    while wanted:
        function = functions[wanted.pop()]
        if function.name in seen:
            continue
        seen.add(function.name)
        for node in ast.walk(function):
            loaded.append(node)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in functions):
                wanted.append(node.func.id)
    return (name, loaded), seen


def names_used(modules):
    """(module, name) of every KEY_NAMES name used (not defined) in them."""
    used = []
    for module, nodes in modules:
        for node in nodes:
            if isinstance(node, ast.Name) and node.id in KEY_NAMES:
                used.append((module, node.id))
            elif isinstance(node, ast.Attribute) and node.attr in KEY_NAMES:
                used.append((module, node.attr))
    return used


# -- the rules -------------------------------------------------------------------

@pytest.mark.parametrize("module", ["pyweb_popcon.report",
                                    "pyweb_popcon.catalogue",
                                    "pyweb_popcon.dnswire",
                                    "pyweb_popcon.openpgp",
                                    "pyweb_popcon.common"])
def test_the_shared_parts_import_neither_side(module):
    roots = [module] + project_modules(module) * (module.endswith("common"))
    assert violations(roots, ("pyweb_popcon.client",
                              "pyweb_popcon.server")) == []


@pytest.mark.parametrize("side,other", [("client", "server"),
                                        ("server", "client")])
def test_one_side_imports_nothing_of_the_other(side, other):
    assert violations(project_modules(f"pyweb_popcon.{side}"),
                      (f"pyweb_popcon.{other}",)) == []


@pytest.mark.parametrize("package", sorted(PACKAGE_RULES))
def test_a_package_reaches_nothing_its_boundary_forbids(package):
    assert violations(project_modules(package),
                      PACKAGE_RULES[package]) == []


def test_no_module_imports_itself_through_others():
    modules = project_modules(PACKAGE)
    assert len(modules) > 40
    found = cycles(GRAPH, modules)
    assert found == [], "import cycles:\n" + "\n".join(found)


@pytest.mark.parametrize("side,extras", [("client", ["client", "tor"]),
                                         ("server",
                                          ["server", "postgresql"])])
def test_what_a_side_imports_is_declared_for_its_package(side, extras):
    """dh_python3 makes the packages' dependencies of setup.cfg's
    (debian/rules): a module a side imports, late ones too, is there."""
    assert undeclared(side, extras) == []


@pytest.mark.parametrize("command,modules", [
    ("cmd_serve", ["intake.receive", "intake.serve"]),
    # The DNS receiver, PowerDNS's backend: a receiver as well.
    ("cmd_dns_backend", ["intake.dnsreceive"])])
def test_the_receiver_never_reaches_gnupg_the_store_or_the_key(command,
                                                               modules):
    cli, followed = cli_path("pyweb_popcon.server.admin.cli", [command])
    assert {"main", command} <= followed
    roots = [cli] + [f"pyweb_popcon.server.{m}" for m in modules]
    assert violations(roots, SECRETS) == []
    parent = GRAPH.reach(roots)
    reached = [(m, list(_statements(GRAPH.tree(m)[0], True)))
               for m in parent if m.startswith(PACKAGE)
               and m != "pyweb_popcon.server.admin.cli"]
    assert names_used([cli] + reached) == []


@pytest.mark.parametrize("module", ["scan", "facts", "hostid", "collect"])
def test_what_reads_the_system_reaches_no_network(module):
    assert violations([f"pyweb_popcon.client.{module}"], NETWORK) == []


# -- the rules can fail ------------------------------------------------------------

def test_a_broken_rule_names_its_chain():
    """Each rule above would see a violation: the graph finds these."""
    assert "pyweb_popcon.client.encrypt -> gnupg -> socket" in violations(
        ["pyweb_popcon.client.encrypt"], ("socket",))
    assert violations(["pyweb_popcon.client.cli"], ("pyweb_popcon.client."
                                                    "https",)) == [
        "pyweb_popcon.client.cli -> pyweb_popcon.client.https"]
    assert any(c.endswith("pyweb_popcon.server.keyholder.gpg")
               for c in violations(["pyweb_popcon.server.admin.cli"],
                                   SECRETS))
    ingest, _ = cli_path("pyweb_popcon.server.admin.cli", ["cmd_ingest"])
    assert names_used([ingest]) != []


def planted(tmp_path, files):
    """A Graph of a planted source tree: {path under src: source}; the
    packages' __init__.py are made empty where not given.  Other modules
    are the same as GRAPH's: parsed once."""
    for path, text in files.items():
        parts = path.split("/")
        for i in range(1, len(parts)):
            init = tmp_path.joinpath(*parts[:i], "__init__.py")
            init.parent.mkdir(parents=True, exist_ok=True)
            if not init.exists():
                init.write_text("")
        tmp_path.joinpath(*parts).write_text(text)
    graph = Graph(str(tmp_path))
    graph.trees = {name: tree for name, tree in GRAPH.trees.items()
                   if not name.startswith(PACKAGE)}
    return graph


# Every rule's forbidden modules, as the rule's roots would reach them.
RULES = list(PACKAGE_RULES.items()) + [
    ("pyweb_popcon.client", ("pyweb_popcon.server",)),
    ("pyweb_popcon.server", ("pyweb_popcon.client",)),
    ("pyweb_popcon.common", ("pyweb_popcon.client", "pyweb_popcon.server"))]


@pytest.mark.parametrize("package,forbidden", RULES)
def test_a_package_rule_finds_a_planted_import(tmp_path, package,
                                               forbidden):
    """A module under `package` that reaches each forbidden module, late
    (inside a function) and through another module."""
    files = {package.replace(".", "/") + "/planted.py":
             "from pyweb_popcon import middle\n",
             "pyweb_popcon/middle.py": "def later():\n" + "".join(
                 f"    import {f}\n" for f in forbidden)}
    graph = planted(tmp_path, files)
    found = violations(project_modules(package, str(tmp_path)), forbidden,
                       graph)
    for f in forbidden:
        assert f"{package}.planted -> pyweb_popcon.middle -> {f}" in found


def test_a_cycle_is_found_and_printed(tmp_path):
    """A cycle through a lazy import is found, printed from its first
    module; a diamond (two ways to one module) is no cycle."""
    graph = planted(tmp_path, {
        "pyweb_popcon/a.py": "from pyweb_popcon import b\n",
        "pyweb_popcon/b.py": "def later():\n    from . import c\n",
        "pyweb_popcon/c.py": "import pyweb_popcon.a\nimport pyweb_popcon.d\n",
        "pyweb_popcon/d.py": "",
        "pyweb_popcon/e.py": "from pyweb_popcon import d, f\n",
        "pyweb_popcon/f.py": "from pyweb_popcon import d\n",
        # A package that gathers its submodules is no cycle, unless one
        # of them imports the package by name.
        "pyweb_popcon/p/__init__.py": "from pyweb_popcon.p.q import Q\n",
        "pyweb_popcon/p/q.py": "from pyweb_popcon.p.r import R\nQ = R\n",
        "pyweb_popcon/p/r.py": "R = 1\n",
        "pyweb_popcon/s/__init__.py": "from pyweb_popcon.s.t import T\n",
        "pyweb_popcon/s/t.py": "from pyweb_popcon import s\nT = 1\n"})
    modules = project_modules(PACKAGE, str(tmp_path))
    assert cycles(graph, modules) == [
        "pyweb_popcon.a -> pyweb_popcon.b -> pyweb_popcon.c -> "
        "pyweb_popcon.a",
        "pyweb_popcon.s -> pyweb_popcon.s.t -> pyweb_popcon.s"]


def test_an_undeclared_import_is_found():
    """Without its extras, the client imports what nobody declared."""
    found = undeclared("client", [])
    for module, dist in (("pyweb_popcon.client.encrypt -> gnupg",
                          "python-gnupg"),
                         ("pyweb_popcon.client.https -> requests",
                          "requests")):
        assert any(c.endswith(f"{module} ({dist})") for c in found)
    assert not any(c.endswith("(packaging)") for c in found)
