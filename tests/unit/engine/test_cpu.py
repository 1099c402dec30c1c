"""The engine's thread choice: a torch thread per core other work leaves free (engine/cpu.py)."""

from __future__ import annotations

import pytest

from engine import cpu


@pytest.mark.parametrize(("cores", "load", "free"), [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.4, 1), (2, 4.5, 1), (16, 3.2, 13), (1, 0.0, 1)])
def test_free_cores_are_the_cores_minus_the_load_never_fewer_than_one(monkeypatch, cores, load, free):
    monkeypatch.setattr(cpu, "cores", lambda: cores)
    assert cpu.free_cores(load) == free
