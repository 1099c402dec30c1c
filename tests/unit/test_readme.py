"""README says how the app is built; these checks keep it from drifting from the code."""

from __future__ import annotations

import re
from pathlib import Path

from shared.runs import TRANSITIONS, State

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_state_diagram_is_exactly_the_state_machine() -> None:
    (diagram,) = re.findall(r"```mermaid\n(stateDiagram-v2\n.*?)```", README, re.S)
    drawn = set()
    for line in diagram.splitlines()[1:]:
        edge = re.fullmatch(r"\s*(\S+) --> (\S+)(?: : .*)?", line)
        assert edge, f"not an edge: {line!r}"
        if "[*]" not in edge.groups():
            drawn.add((State(edge.group(1)), State(edge.group(2))))
    coded = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
    assert drawn == coded, {"drawn only": drawn - coded, "in TRANSITIONS only": coded - drawn}


def test_every_place_the_build_table_names_exists() -> None:
    section = README.split("## How it is built", 1)[1].split("\n## ", 1)[0]
    places = re.findall(r"^\| `([^`]+)` \|", section, re.M)
    assert len(places) >= 10
    assert [p for p in places if not (ROOT / p).exists()] == []
