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
                   "shared/runs/store.py", "shared/runs/memory.py", "shared/runs/codec.py",
                   "shared/staging/store.py", "shared/staging/reader.py", "shared/staging/quarantine.py",
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


# -- The embedded engine apart (engine/), and no import circle -----------------------------------------------
# Read like the checks above, but over the module graph: every import that can run (top level, inside
# functions, in try blocks; not under `if TYPE_CHECKING:`), followed through our own modules.

HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")  # the engine's, never the app's
APP_ROOTS = ("function_app.py", "functions", "shared", "cli")  # what the function app and the CLI run
# The CLI's modules leave shared/ for cli/ (issue #26, a branch of its own), which ends their circle; until
# that lands they are left out of the circle check (not out of the engine/torch check).
LEAVING_SHARED = ("shared.cli",)


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
            name = module_name(path, root)
            if not name.startswith(LEAVING_SHARED):
                graph[name] = {m for m, _ in runnable_imports(path, root) if m.split(".")[0] in folders}
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


def test_no_import_circle_in_the_engine_or_the_core() -> None:
    assert circles(import_graph("engine", "shared")) == []


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
