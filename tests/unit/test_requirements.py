"""Azure installs requirements.txt and nothing else: every module the function app can import there (lazily
too) must come from a distribution that requirements.txt installs, directly or as a dependency of one.

Read from the source (no module of ours is imported): the import closure starts at function_app.py and
functions/ and follows our own modules into shared/, the local adapter (shared/platforms/local/) included.
The adapter is deployed but picked by the composition root only when AUTOPILOT_PLATFORM=local, so what it
alone imports (MLflow, lazily) may come from requirements-local.txt; everything else from requirements.txt.
The embedded engine (engine/) is never imported by the app (tests/unit/test_layers.py): it is not deployed
and installs nothing here, so an import of it would be reported as missing. Distributions come from this
environment's metadata: `packages_distributions()` and each distribution's `requires`.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
OURS = {"shared", "functions", "function_app"}
# The local adapter: what it alone imports may come from requirements-local.txt (it runs only off Azure).
LOCAL_ADAPTER = "shared/platforms/local/"
# What the Functions host's Python worker brings itself (it runs our code): none today.
WORKER_PROVIDES: set[str] = set()


def module_file(module: str) -> Path | None:
    """The source file of one of our modules, or None (a name inside a module, or not ours)."""
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_by(path: Path) -> Iterator[tuple[str, int]]:
    """(module, line) of every import the file can execute: top-level, in functions, in try blocks; not the
    ones under `if TYPE_CHECKING:`, which never run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
               for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base, node.lineno
            # `from package import module` imports the module too
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names
                        if module_file(f"{base}.{alias.name}"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def app_imports() -> dict[str, list[str]]:
    """Third-party module -> where the app imports it ("file:line"), over the closure of our modules
    reachable from function_app.py and functions/."""
    start = [ROOT / "function_app.py", *sorted((ROOT / "functions").glob("*.py"))]
    seen: set[Path] = set()
    found: dict[str, list[str]] = defaultdict(list)
    while start:
        path = start.pop()
        if path in seen:
            continue
        seen.add(path)
        for module, line in imported_by(path):
            top = module.split(".")[0]
            if top in OURS:
                # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
                for depth in range(1, module.count(".") + 2):
                    target = module_file(".".join(module.split(".")[:depth]))
                    if target is not None:
                        start.append(target)
            elif top not in sys.stdlib_module_names and top != "__future__":
                found[module].append(f"{path.relative_to(ROOT)}:{line}")
    return found


def requirement_names(path: Path) -> set[str]:
    """Canonical names (with extras) of the distributions a requirements file names, -r included."""
    names: set[str] = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            names |= requirement_names(path.parent / line.split(None, 1)[1])
            continue
        requirement = Requirement(line)
        names.add(canonicalize_name(requirement.name))
        names |= {f"{canonicalize_name(requirement.name)}[{extra}]" for extra in requirement.extras}
    return names


def closure(roots: set[str]) -> set[str]:
    """Every distribution the roots install: themselves and their dependencies, extras as requested."""
    done: set[str] = set()
    extras: dict[str, set[str]] = defaultdict(set)
    for root in roots:
        name, _, extra = root.partition("[")
        if extra:
            extras[name].add(extra.rstrip("]"))
    todo = [r.partition("[")[0] for r in roots]
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        for spec in metadata.distribution(name).requires or []:
            requirement = Requirement(spec)
            wanted = [{"extra": e} for e in extras[name] | {""}]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in wanted):
                dependency = canonicalize_name(requirement.name)
                extras[dependency] |= set(requirement.extras)
                todo.append(dependency)
    return done


@cache
def _owners() -> dict[str, set[str]]:
    """Dotted package/module path -> the distributions with files under it (a namespace package such as
    `azure` has many; `packages_distributions()` stops at the top level)."""
    owners: dict[str, set[str]] = defaultdict(set)
    for top, dists in metadata.packages_distributions().items():
        owners[top] |= {canonicalize_name(d) for d in dists}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        for file in dist.files or []:
            parts = file.parts
            if len(parts) < 2 or not re.fullmatch(r"[A-Za-z_]\w*", parts[0]):
                continue
            stem = parts[-1].split(".")[0]
            dotted = [*parts[:-1], stem] if stem != "__init__" else list(parts[:-1])
            for depth in range(2, len(dotted) + 1):
                owners[".".join(dotted[:depth])].add(name)
    return owners


def distributions_of(module: str) -> set[str]:
    """The distributions that provide `module`: those owning its deepest known package."""
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        owners = _owners().get(".".join(parts[:depth]))
        if owners:
            return owners
    return set()


def missing_from(requirements: Path, local: Path | None = None) -> dict[str, list[str]]:
    """Modules the app imports that `requirements` does not install; with `local` (requirements-local.txt),
    a module only the local adapter imports counts as installed when `local` installs it."""
    installed = closure(requirement_names(requirements))
    installed_here = closure(requirement_names(local)) if local is not None else installed
    missing = {}
    for module, where in sorted(app_imports().items()):
        only_local = all(w.startswith(LOCAL_ADAPTER) for w in where)
        if module.split(".")[0] not in WORKER_PROVIDES and \
                not distributions_of(module) & (installed_here if only_local else installed):
            missing[module] = where
    return missing


def test_the_scan_sees_the_app_lazy_imports_and_the_local_adapters() -> None:
    imports = app_imports()
    assert "azure.functions" in imports  # function_app.py, top level
    assert any(m.startswith("azure.ai.ml") for m in imports)  # the Azure ML adapter, through wiring
    assert any(m.startswith("azure.eventgrid") for m in imports)  # shared/alerts.py, inside a method
    # The local adapter, through wiring: MLflow inside its methods, and nothing of the engine's.
    assert all(w.startswith(LOCAL_ADAPTER) for w in imports["mlflow"])
    assert not any(m.split(".")[0] in {"engine", "torch", "transformers", "trl", "peft"} for m in imports)
    assert "azure-monitor-opentelemetry" in distributions_of("azure.monitor.opentelemetry")
    exporter = "azure-monitor-opentelemetry-exporter"
    assert distributions_of("azure.monitor.opentelemetry.exporter") == {exporter}
    assert distributions_of("azure.storage.blob") == {"azure-storage-blob"}
    assert "requests" in closure({"azure-core"})  # a dependency of a requirement counts
    assert "torch" not in closure(requirement_names(ROOT / "requirements.txt"))


def test_every_module_the_app_imports_is_installed_by_requirements_txt() -> None:
    missing = missing_from(ROOT / "requirements.txt", local=ROOT / "requirements-local.txt")
    assert not missing, ("imported by the function app but installed only by another requirements file "
                         f"(Azure installs requirements.txt alone): {missing}")


def test_only_the_local_adapters_own_imports_may_come_from_requirements_local() -> None:
    # Without the allowance, MLflow (the local registry) is missing from requirements.txt: it is the
    # adapter's alone, and the app reaches it only there.
    assert set(missing_from(ROOT / "requirements.txt")) >= {"mlflow"}
    assert "mlflow" not in missing_from(ROOT / "requirements.txt", local=ROOT / "requirements-local.txt")


def test_the_check_catches_a_module_only_another_requirements_file_installs(tmp_path: Path) -> None:
    without = tmp_path / "requirements.txt"
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    without.write_text("\n".join(x for x in lines if not x.startswith("azure-eventgrid")), encoding="utf-8")
    assert any(m.startswith("azure.eventgrid") for m in missing_from(without))
