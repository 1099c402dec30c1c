"""How many CPU threads the local engine's processes (fine-tune job, endpoint server) give torch.

Measured on the 2-core dev machine while other processes kept it busy (load 3-5), SmolLM2-135M, 8 prompts x
64 new tokens batched: 33 s with 2 torch threads and OpenMP's default (spinning) wait policy, 16 s with
OMP_WAIT_POLICY=PASSIVE, 11 s with 1 thread; a demo fine-tune with 2 spinning threads took 317 s where one
passive thread took 87 s. A spinning OpenMP thread burns its core waiting for a sibling that the scheduler
has parked behind someone else's process, so on a shared CPU it is the worst choice. Hence both children
start with a passive wait policy (it must be in the environment before torch loads OpenMP, so the adapter
that starts them sets it: shared/platforms/local/engine_env.py), and use as many threads as there are cores
nobody else is using right now (never fewer than one).
"""

from __future__ import annotations

import math
import os


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def free_cores(load: float | None = None) -> int:
    """Cores not busy with other work: all cores minus the one-minute load average, at least one.

    `load` defaults to the system's load average; a core counts as free when less than half of it is taken.
    """
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    total = cores()
    return max(1, min(total, total - math.floor(load + 0.5)))


def use_free_cores(load: float | None = None) -> int:
    """Give torch one thread per free core (on a GPU the CPU threads matter little); returns the count."""
    import torch

    threads = free_cores(load)
    torch.set_num_threads(threads)
    return threads
