"""The house's one-way data flow, checked on the source: trigger → core → port → adapter.

Read from the import statements (no module is imported), so a violation names the file and the import.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(folder: str) -> Iterator[tuple[str, str]]:
    """(file, imported module) for every import under `folder` (or of one file)."""
    target = ROOT / folder
    for path in sorted(target.rglob("*.py") if target.is_dir() else [target]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            yield from ((str(path.relative_to(ROOT)), name) for name in names)


def offending(folder: str, *prefixes: str) -> list[tuple[str, str]]:
    return [(f, m) for f, m in imports(folder) if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_the_core_never_reaches_back_to_triggers_hosts_or_the_functions_library() -> None:
    assert offending("shared", "functions", "devhost", "demo", "azure.functions", "azurefunctions") == []


def test_rules_and_handlers_see_ports_only_never_a_storage_or_ml_sdk() -> None:
    for folder in ("shared/lifecycle", "shared/ops", "shared/runs/record.py", "shared/runs/ledger.py",
                   "shared/runs/port.py", "shared/runs/memory.py", "shared/runs/codec.py",
                   "shared/staging/port.py", "shared/staging/reader.py", "shared/staging/quarantine.py",
                   "shared/staging/memory.py"):
        assert offending(folder, "azure", "shared.storage", "shared.platforms.local",
                         "shared.platforms.azureml", "shared.runs.table", "shared.staging.azure_blob") == []


def test_only_the_composition_root_picks_adapters() -> None:
    adapters = ("shared.platforms.local", "shared.platforms.azureml", "shared.runs.table",
                "shared.staging.azure_blob")
    found = {f for f, _ in offending("shared", *adapters) + offending("functions", *adapters)
             + offending("devhost", *adapters) + offending("demo", *adapters)}
    inside = ("shared/platforms/", "shared/runs/table", "shared/staging/azure_blob")  # an adapter's own parts
    allowed = {"shared/wiring.py"} | {f for f in found if f.startswith(inside)}
    assert found <= allowed, found - allowed


def test_no_capability_is_found_by_asking_what_the_platform_is() -> None:
    # What the page, the CLI or the demo uses is on the port: isinstance(<…platform>, …) finds it only
    # where the composition root picks the adapter.
    asked = []
    for folder in ("shared", "functions", "devhost", "demo"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.relative_to(ROOT).as_posix() == "shared/wiring.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                        node.func.id == "isinstance" and node.args and \
                        ast.unparse(node.args[0]).split(".")[-1] == "platform":
                    asked.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert asked == []


def test_the_devhost_uses_the_functions_library_public_modules_only() -> None:
    used = {m for _, m in imports("devhost") if m.startswith("azure.functions")}
    # azure.functions.queue: the worker's QueueMessage, the one with a dequeue count (the abstract has none).
    assert used <= {"azure.functions", "azure.functions.blob", "azure.functions.queue",
                    "azure.functions.timer"}, used
    private = [(str(path.relative_to(ROOT)), node.attr) for path in (ROOT / "devhost").rglob("*.py")
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.Attribute) and node.attr.startswith("_")
               and not node.attr.startswith("__")
               and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))]
    assert private == []


def test_no_trigger_module_shares_a_name_with_a_core_module() -> None:
    triggers = {p.stem for p in (ROOT / "functions").glob("*.py")} - {"__init__"}
    core = {p.stem for p in (ROOT / "shared").rglob("*.py")} | {p.name for p in (ROOT / "shared").rglob("*")
                                                                 if p.is_dir()}
    assert triggers & core == set()


def test_the_command_line_is_a_front_door_that_the_core_and_the_triggers_never_import() -> None:
    # cli/ drives shared/ as functions/ and devhost/ do: nothing below it imports it (so no circle through
    # it), and it reaches neither the triggers nor the Functions host's stand-in (`autopilot up` execs
    # `python -m devhost`), nor an adapter (the composition root picks those).
    assert offending("shared", "cli") == []
    assert offending("functions", "cli") + offending("function_app.py", "cli") == []
    assert offending("cli", "functions", "function_app", "devhost", "azure.functions", "azurefunctions") == []
    assert offending("cli", "shared.platforms.local", "shared.platforms.azureml", "shared.runs.table",
                     "shared.staging.azure_blob", "engine") == []


# The ports whose implementations the composition root chooses. Their implementations are not listed here:
# every class that implements one (defines each of its methods, with the same parameters, itself or through
# its bases) is found in the code, and so is every class of a platform adapter's package.
PORTS = ("Platform", "RowStore", "BlobStore", "MessageQueue", "AlertSink", "AlertHistory")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _adapter_packages() -> list[str]:
    """Each platform adapter's package (shared.platforms.local, .azureml, ...; the engine where it is)."""
    found = [_module(p) for p in sorted((ROOT / "shared" / "platforms").glob("*/__init__.py"))]
    return found + (["engine"] if (ROOT / "engine" / "__init__.py").is_file() else [])


def _methods(node: ast.ClassDef) -> dict[str, tuple[str, ...]]:
    return {f.name: tuple(a.arg for a in f.args.args[1:]) for f in node.body
            if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")}


def backend_classes() -> dict[str, set[str]]:
    """Class name → the modules that define it, for every port implementation and adapter class in the
    app's code and the test fakes (the in-memory platform)."""
    defined: list[tuple[str, ast.ClassDef]] = []
    for folder in ("shared", "engine", "tests/fakes"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            defined += [(_module(path), n) for n in tree.body if isinstance(n, ast.ClassDef)]
    by_name = {node.name: node for _, node in defined}

    def bases(node: ast.ClassDef) -> list[str]:
        return [ast.unparse(b).split(".")[-1].split("[")[0] for b in node.bases]

    def methods(node: ast.ClassDef, seen: frozenset[str] = frozenset()) -> dict[str, tuple[str, ...]]:
        inherited: dict[str, tuple[str, ...]] = {}
        for base in bases(node):
            if base in by_name and base not in seen:
                inherited |= methods(by_name[base], seen | {node.name})
        return inherited | _methods(node)

    ports = {name: _methods(by_name[name]) for name in PORTS}
    assert all(ports.values()), "a port is missing or has no methods: PORTS names the ports' classes"
    packages = _adapter_packages()
    found: dict[str, set[str]] = {}
    for module, node in defined:
        if "Protocol" in bases(node) or node.name.startswith("_"):  # a port itself; a module's private helper
            continue
        have = methods(node)
        implements = any(all(have.get(m) == params for m, params in port.items()) for port in ports.values())
        if implements or any(module == p or module.startswith(p + ".") for p in packages):
            found.setdefault(node.name, set()).add(module)
    return found


def _home(module: str) -> str:
    """Where a class may be asked about by its own kind: its adapter package, else its module."""
    return next((p for p in _adapter_packages() if module == p or module.startswith(p + ".")), module)


def asked_about_backends(source: str, relative: str, backends: dict[str, set[str]]) -> list[str]:
    """`file:line class` for each isinstance/issubclass in `source` (the file at `relative`) whose class is
    an adapter or backend imported from where it is defined, outside that class's own home."""
    tree = ast.parse(source)
    here = _module(ROOT / relative)
    names: dict[str, tuple[str, str]] = {}  # local name → (module, class name)
    modules: dict[str, str] = {}  # local name → module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = (node.module, alias.name)
                modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:  # `import a.b` binds a (to a); `import a.b as c` binds c (to a.b)
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    modules[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ClassDef):
            names.setdefault(node.name, (here, node.name))

    def classes(target: ast.expr) -> Iterator[tuple[str, str]]:
        if isinstance(target, ast.Tuple):
            for item in target.elts:
                yield from classes(item)
        elif isinstance(target, ast.BinOp) and isinstance(target.op, ast.BitOr):
            yield from classes(target.left)
            yield from classes(target.right)
        elif isinstance(target, ast.Name) and target.id in names:
            yield names[target.id]
        elif isinstance(target, ast.Attribute):
            head, _, rest = ast.unparse(target.value).partition(".")
            if head in modules:
                yield ".".join(p for p in (modules[head], rest) if p), target.attr

    asked = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2 \
                and node.func.id in ("isinstance", "issubclass"):
            for module, name in classes(node.args[1]):
                homes = backends.get(name, set())
                # from the defining module, or from a package that re-exports it
                if any(d == module or d.startswith(module + ".") for d in homes) and \
                        all(_home(d) != _home(here) for d in homes):
                    asked.append(f"{relative}:{node.lineno} {name}")
    return asked


def test_no_adapter_or_backend_is_found_by_its_type_outside_the_composition_root() -> None:
    backends = backend_classes()
    # What the set holds is computed; that it holds each kind is what makes the scan mean something.
    for expected in ("LocalPlatform", "AzureMLPlatform", "InMemoryPlatform", "JsonlAlertSink", "WebhookSink",
                     "EventGridSink", "TableRowStore", "InMemoryRowStore", "AzureBlobStore", "StorageQueue",
                     "InMemoryQueue"):
        assert expected in backends, expected
    asked = []
    for folder in ("shared", "functions", "cli", "devhost", "demo", "function_app.py"):
        target = ROOT / folder
        for path in sorted(target.rglob("*.py") if target.is_dir() else [target]):
            relative = path.relative_to(ROOT).as_posix()
            if relative != "shared/wiring.py":
                asked += asked_about_backends(path.read_text(encoding="utf-8"), relative, backends)
    assert asked == [], "ask the port (a capability), not the type: " + ", ".join(asked)
    # The scan finds one when there is one: by name, by alias in a tuple or union, by module attribute.
    planted = ("from shared.platforms.local import LocalPlatform\n"
               "from shared.alerts import JsonlAlertSink as Kept\n"
               "import shared.runs.table as table\n"
               "def f(p, s, r):\n"
               "    return isinstance(p, LocalPlatform) or isinstance(s, (int, Kept)) or isinstance(r, str | "
               "table.TableRowStore)\n")
    assert [a.split(" ")[1] for a in asked_about_backends(planted, "cli/planted.py", backends)] == [
        "LocalPlatform", "JsonlAlertSink", "TableRowStore"]
def test_conflicts_are_retried_by_the_ledger_alone() -> None:
    # A lost compare-and-set is tried again by Ledger.retry_on_conflict (a change judged afresh on the run as
    # re-read). A retry loop of its own elsewhere (a `while`, or `for _ in range(...)`) that catches the
    # store's Conflict or reads a run again from the ledger is a second copy of that rule, drifting apart.
    def names_conflict(node: ast.AST | None) -> bool:
        return node is not None and any(
            (isinstance(n, ast.Name) and n.id == "Conflict") or (isinstance(n, ast.Attribute)
                                                                 and n.attr == "Conflict")
            for n in ast.walk(node))

    def retries(loop: ast.AST) -> bool:
        for node in ast.walk(loop):
            if isinstance(node, ast.ExceptHandler) and names_conflict(node.type):
                return True
            if isinstance(node, ast.Call):
                called = ast.unparse(node.func)
                if called.endswith("ledger.get") or (called.endswith("suppress")
                                                     and any(names_conflict(a) for a in node.args)):
                    return True
        return False

    def is_retry_loop(node: ast.AST) -> bool:
        return isinstance(node, ast.While) or (isinstance(node, ast.For) and isinstance(node.iter, ast.Call)
                                               and ast.unparse(node.iter.func) == "range")

    found = []
    for folder in ("shared", "functions", "devhost", "demo", "cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.relative_to(ROOT).as_posix().startswith("shared/runs/"):  # the ledger and its rows
                continue
            found += [f"{path.relative_to(ROOT)}:{node.lineno}"
                      for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                      if is_retry_loop(node) and retries(node)]
    assert found == []
# -- The embedded engine apart (engine/), and no import circle -----------------------------------------------
# Read like the checks above, but over the module graph: every import that can run (top level, inside
# functions, in try blocks; not under `if TYPE_CHECKING:`), followed through our own modules.

HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")  # the engine's, never the app's
APP_ROOTS = ("function_app.py", "functions", "shared", "cli")  # what the function app and the CLI run


def module_path(module: str, root: Path = ROOT) -> Path | None:
    """The source file of one of our modules under `root`, or None (a name inside a module, or not ours)."""
    base = root.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runnable_imports(path: Path, root: Path = ROOT) -> Iterator[tuple[str, int]]:
    """(module, line) of every import in the file that can run, relative ones resolved; `from p import m`
    names p.m when m is a module of ours (and p as well when some name is not a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and ast.unparse(node.test).split(".")[-1] == "TYPE_CHECKING"
               for stmt in node.body for n in ast.walk(stmt)}
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            submodules = [f"{base}.{a.name}" for a in node.names if module_path(f"{base}.{a.name}", root)]
            yield from ((m, node.lineno) for m in submodules)
            if len(submodules) < len(node.names):
                yield base, node.lineno


def reachable_imports(starts: tuple[str, ...], root: Path = ROOT) -> list[tuple[str, str]]:
    """("file:line", module) of every import that can run in our modules reachable from `starts` (files or
    folders under `root`), following our modules (a package's __init__ too) but not into the engine."""
    todo = [p for s in starts if (root / s).exists()
            for p in ((root / s).rglob("*.py") if (root / s).is_dir() else [root / s])]
    seen: set[Path] = set()
    found = []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module, line in runnable_imports(path, root):
            found.append((f"{path.relative_to(root)}:{line}", module))
            if module.split(".")[0] == "engine":
                continue  # reported, not followed
            parts = module.split(".")
            todo += [p for depth in range(1, len(parts) + 1)
                     if (p := module_path(".".join(parts[:depth]), root)) is not None]
    return found


def app_reaches_engine_or_heavy(root: Path = ROOT) -> list[tuple[str, str]]:
    return sorted((where, module) for where, module in reachable_imports(APP_ROOTS, root)
                  if module.split(".")[0] in ("engine", *HEAVY))


def test_the_app_never_imports_the_engine_or_torch_and_friends() -> None:
    # The local adapter starts the engine's processes by module name and reads their files; the function app
    # (and the CLI) never loads the engine, nor torch, transformers, TRL, PEFT, datasets or accelerate.
    assert app_reaches_engine_or_heavy() == []


def test_the_engine_check_catches_a_planted_import_however_deep(tmp_path: Path) -> None:
    for folder in ("functions", "shared", "engine"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "function_app.py", tmp_path / "function_app.py")
    assert app_reaches_engine_or_heavy(tmp_path) == []
    # A lazy import of the engine inside a function of the local adapter.
    jobs = tmp_path / "shared" / "platforms" / "local" / "jobs.py"
    jobs.write_text(jobs.read_text(encoding="utf-8")
                    + "\n\ndef _planted() -> None:\n    from engine.train import training  # noqa\n",
                    encoding="utf-8")
    assert [m for _, m in app_reaches_engine_or_heavy(tmp_path)] == ["engine.train.training"]
    jobs.write_text((ROOT / "shared" / "platforms" / "local" / "jobs.py").read_text(encoding="utf-8"))
    # torch two modules away from a trigger, through a relative import and a module outside the roots.
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "helpers" / "tensors.py").write_text("def f():\n    import torch.nn\n", encoding="utf-8")
    (tmp_path / "helpers" / "models.py").write_text("from . import tensors\n", encoding="utf-8")
    (tmp_path / "functions" / "planted.py").write_text("import helpers.models\n", encoding="utf-8")
    assert app_reaches_engine_or_heavy(tmp_path) == [("helpers/tensors.py:2", "torch.nn")]


def import_graph(*folders: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of ours (under `folders`) it imports, at any level of the file."""
    graph: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            graph[module_name(path, root)] = {m for m, _ in runnable_imports(path, root)
                                              if m.split(".")[0] in folders}
    return {name: targets & graph.keys() for name, targets in graph.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph`: its strongly connected components of more than one module, or of one
    that imports itself (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))
    return found


def test_no_import_circle_anywhere_in_the_app() -> None:
    # The core, the engine and the three front doors (triggers, devhost, CLI) with the demo that drives them.
    assert circles(import_graph("shared", "engine", "functions", "devhost", "cli", "demo")) == []


def test_the_circle_check_sees_a_circle_through_a_function_level_import() -> None:
    graph = import_graph("engine", "shared")
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"a"}}) == [["a"]]
    # What the engine's models used to do: loading <-> smollm2 through an import inside a function.
    graph["engine.models.smollm2"] = graph["engine.models.smollm2"] | {"engine.models.loading"}
    assert ["engine.models.loading", "engine.models.smollm2"] in circles(graph)


def test_the_core_never_imports_the_engine() -> None:
    # Statically or lazily, anywhere in shared/: the engine sits above the core and its adapter.
    assert [(f, m) for f, m in imports("shared") if m == "engine" or m.startswith("engine.")] == []
    assert [(path, m) for path in (ROOT / "shared").rglob("*.py") for m, _ in runnable_imports(path)
            if m.split(".")[0] == "engine"] == []


def test_the_engine_is_not_deployed_but_is_packaged_and_type_checked() -> None:
    ignored = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    assert "engine/" in ignored  # Azure gets the app alone; the engine needs requirements-local.txt
    assert '"engine*"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # `pip install -e .` finds it
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    lint = [line for line in makefile if "bin/mypy" in line]
    assert lint and all(" engine " in line for line in lint)


def one_letter_apart(a: str, b: str) -> bool:
    """Whether `b` is `a` with one letter changed, added or dropped."""
    if len(a) > len(b):
        a, b = b, a
    if len(b) - len(a) > 1 or a == b:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    return any(b[:i] + b[i + 1:] == a for i in range(len(b)))


def test_no_two_engine_or_local_adapter_modules_differ_by_one_letter() -> None:
    # job.py (the training child) and jobs.py (the adapter) once did, and ran in different processes.
    stems = sorted({p.stem for folder in ("engine", "shared/platforms/local")
                    for p in (ROOT / folder).rglob("*.py")} - {"__init__", "__main__"})
    assert [(a, b) for i, a in enumerate(stems) for b in stems[i + 1:] if one_letter_apart(a, b)] == []
    assert one_letter_apart("job", "jobs") and one_letter_apart("serve", "server") \
        and not one_letter_apart("jobs", "job_files")


def test_no_two_modules_of_one_package_differ_by_one_letter() -> None:
    # A reader meets both names side by side (job.py/jobs.py once did). Across packages, shared/ had
    # manifest/manifests and upload/uploads (dataset/ and lifecycle/): renamed run_plan.py and any_upload.py.
    found = []
    for package in ("shared", "engine", "cli", "functions", "devhost", "demo"):
        for folder in [ROOT / package, *(p for p in (ROOT / package).rglob("*") if p.is_dir())]:
            stems = sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "__main__"))
            where = str(folder.relative_to(ROOT))
            found += [(where, a, b) for i, a in enumerate(stems) for b in stems[i + 1:]
                      if one_letter_apart(a, b)]
    assert found == []


# The layers, top to bottom. A package may import its own layer's (the front doors drive each other only
# where named below) and any lower one, never a higher one.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("demo",),                                # drives the devhost, the engine's preparation and the app
    ("devhost", "cli"),                       # host / commands over the app; `autopilot up` execs devhost
    ("functions", "function_app", "engine"),  # the triggers; the engine's own processes
    ("shared",),                              # the core, its ports and adapters
)
# Same-layer imports that are the design: function_app registers functions/' blueprints, and the devhost
# hosts function_app (and through it functions/).
ACROSS = {("function_app", "functions"), ("devhost", "function_app"), ("devhost", "functions")}


def test_no_package_imports_one_of_a_higher_layer_or_a_sibling_it_does_not_drive() -> None:
    layer_of = {package: depth for depth, layer in enumerate(LAYERS) for package in layer}
    found = []
    for package, depth in layer_of.items():
        source = f"{package}.py" if package == "function_app" else package
        for file, module in imports(source):
            target = module.split(".")[0]
            if target not in layer_of or target == package or (package, target) in ACROSS:
                continue
            if layer_of[target] <= depth:
                found.append((file, module))
    assert found == []
