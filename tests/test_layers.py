"""The house's layering, read from the code: every import of a project module in panel/ and certs/
(ast, module level and inside functions alike) points to the importer's own layer or below, and no
chain of imports comes back to where it started. ARCHITECTURE.md says what each layer holds.

A new module must be placed: one that no rule below names fails here, saying so."""

import ast
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("panel", "certs")

TOOLKIT, ADAPTER, SERVICE, ENTRY_POINT, PROJECT = range(5)
LAYER_NAMES = {TOOLKIT: "the toolkit", ADAPTER: "an adapter", SERVICE: "a service", ENTRY_POINT: "an entry point",
               PROJECT: "the project"}

# First match wins. Patterns are module names (fnmatch).
RULES = (
    (TOOLKIT, ("panel.toolkit", "panel.toolkit.*")),
    (ADAPTER, ("certs.acme", "certs.acme.*", "certs.dns", "certs.dns.*", "certs.challenges", "certs.challenges.*",
               "certs.models", "panel.models", "certs.cas",
               # deploy destination kinds: they apply and report; panel.deployment.dispatch records and notifies
               "panel.deployment.nginx", "panel.deployment.nginx.*", "panel.deployment.install_targets")),
    (PROJECT, ("panel", "panel.settings", "panel.urls", "panel.ui_urls", "certs.ui_urls", "panel.celery",
               "panel.wsgi", "panel.apps", "certs.apps", "panel.embedded", "panel.security_headers",
               "panel.openapi", "panel.management.commands.runpanel")),
    (ENTRY_POINT, ("*.views", "*.views.*", "*_views", "*.api", "*.api.*", "*.forms", "*.forms.*", "*.tasks",
                   "*.management", "*.management.*", "*.templatetags", "*.templatetags.*")),
    (SERVICE, ("certs", "certs.*", "panel.hosting", "panel.hosting.*", "panel.security", "panel.security.*",
               "panel.deployment", "panel.deployment.*", "panel.maintenance", "panel.maintenance.*")),
)
# Imports inside functions hide a dependency from a reader of the module's top: a few are
# right (Django's ready(), an optional heavy library loaded on first use), each with a
# comment on its line or the line above saying why.
MAX_FUNCTION_LEVEL_IMPORTS = 5
# The ACME protocol layer knows nothing of Django (STYLE.md rule 3).
FRAMEWORK_FREE = ("certs.acme", "certs.acme.*")


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: Path
    line: int
    in_function: bool

    def where(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def project_modules():
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = project_modules()


def layer_of(module):
    for layer, patterns in RULES:
        if any(fnmatchcase(module, pattern) for pattern in patterns):
            return layer
    return None


def _target(name):
    """The project module an imported name lives in: the longest known prefix."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module, path):
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from a import b`: b may be a module of a, or a name defined in a.
                names = [f"{base}.{alias.name}" if _target(f"{base}.{alias.name}") == f"{base}.{alias.name}" else base
                         for alias in child.names]
            for name in names:
                target = _target(name) if name.split(".")[0] in PACKAGES else None
                if target and target != module:
                    found.append(Import(module, target, path, child.lineno, in_function))
            visit(child, inside)

    visit(tree, False)
    return found


ALL_IMPORTS = [found for module, path in MODULES.items() for found in imports_of(module, path)]


def test_every_module_has_a_layer():
    unplaced = [module for module in MODULES if layer_of(module) is None]
    assert not unplaced, f"modules no layer rule names (add them to RULES in {Path(__file__).name}): {unplaced}"


def test_no_module_imports_from_a_higher_layer():
    upward = [
        f"{found.where()}: {found.importer} ({LAYER_NAMES[layer_of(found.importer)]}) imports {found.imported} "
        f"({LAYER_NAMES[layer_of(found.imported)]})"
        for found in ALL_IMPORTS
        if layer_of(found.importer) is not None and layer_of(found.imported) is not None
        and layer_of(found.imported) > layer_of(found.importer)
    ]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def find_circles(edges):
    """The strongly connected components of more than one module (Tarjan), each as a list."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def connect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges.get(node, ())):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return circles


def test_no_import_circle():
    edges = {}
    for found in ALL_IMPORTS:
        edges.setdefault(found.importer, set()).add(found.imported)
    circles = find_circles(edges)
    described = []
    for members in circles:
        inside = [f"  {found.where()}: {found.importer} -> {found.imported}" for found in ALL_IMPORTS
                  if found.importer in members and found.imported in members]
        described.append(f"circle of {len(members)} modules:\n" + "\n".join(inside))
    assert not circles, "\n".join(described)


def test_the_circle_finder_finds_a_circle():
    assert find_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_circles({"a": {"b"}, "b": {"c"}}) == []


def test_few_imports_inside_functions_each_saying_why():
    in_functions = [found for found in ALL_IMPORTS if found.in_function]
    listed = "\n".join(f"  {found.where()}: {found.imported}" for found in in_functions)
    assert len(in_functions) <= MAX_FUNCTION_LEVEL_IMPORTS, f"imports inside functions:\n{listed}"
    unexplained = []
    for found in in_functions:
        lines = found.path.read_text().splitlines()
        here, above = lines[found.line - 1], lines[found.line - 2] if found.line > 1 else ""
        if "#" not in here and not above.strip().startswith("#"):
            unexplained.append(f"  {found.where()}: {found.imported}")
    assert not unexplained, "say why these imports sit inside a function (a comment):\n" + "\n".join(unexplained)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if any(fnmatchcase(m, p) for p in FRAMEWORK_FREE)))
def test_the_acme_layer_imports_no_django(module):
    tree = ast.parse(MODULES[module].read_text())
    named = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    named += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in named if name.split(".")[0] in ("django", "rest_framework", "celery")]


def is_view_module(module):
    return fnmatchcase(module, "*.views.*") or fnmatchcase(module, "*_views")


def test_no_view_module_imports_another():
    crossing = [f"{found.where()}: {found.importer} imports {found.imported}" for found in ALL_IMPORTS
                if is_view_module(found.importer) and is_view_module(found.imported)]
    assert not crossing, "view modules share code through a service or helper module, not each other:\n" + \
        "\n".join(crossing)
