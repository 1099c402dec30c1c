"""The house's one-way data flow, checked on the source: trigger → core → port → adapter.

Read from the import statements (no module is imported), so a violation names the file and the import.
"""

from __future__ import annotations

import ast
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
