"""The environment every engine process starts with (fine-tune job, model server, shared server, router).

The adapter starts them by module name (`python -m engine.train`, `python -m engine.serve.model_server`…) and
never imports them; this is what they find in their environment before their first import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# The repository root (engine/ and shared/ sit in it): on a child's PYTHONPATH, wherever it was started from.
REPO_ROOT = Path(__file__).resolve().parents[3]

# OpenMP's wait policy is read once, when torch loads it, so it must be in the environment the child starts
# with. A spinning OpenMP thread burns its core waiting for a sibling the scheduler has parked behind someone
# else's process: on a shared CPU that doubled a demo fine-tune's time (measured in engine/cpu.py).
CPU_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) plus what an engine process needs: offline model
    loading, no tokenizer thread pool, a passive OpenMP wait policy, and the repository on PYTHONPATH."""
    base = os.environ if base is None else base
    python_path = [str(REPO_ROOT), base.get("PYTHONPATH", "")]
    return {**base, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            **CPU_ENV, "PYTHONPATH": os.pathsep.join(p for p in python_path if p)}
