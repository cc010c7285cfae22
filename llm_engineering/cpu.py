"""How many CPU threads a compute call may use without fighting other work for the cores.

llama.cpp's threads meet at a spinning barrier after every operation of the graph. When
there are more runnable threads than cores, a thread that reaches the barrier spins away
its time slice waiting for one the scheduler has parked, and a 32-token answer on the
packaged model goes from 2 s to 118 s (measured on 2 cores with four other busy processes:
1 thread 2.1 s, 2 threads 118 s). Too few threads costs at most a factor of the core count;
too many costs far more. So a call takes the cores that are idle *now*, never fewer than one.
"""

from __future__ import annotations

import os
import statistics
import time

__all__ = ["busy_others", "cores", "idle_cores"]


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _procs_running() -> int | None:
    try:
        with open("/proc/stat") as handle:
            for line in handle:
                if line.startswith("procs_running "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def busy_others(samples: int = 5, gap_s: float = 0.002) -> int | None:
    """Threads of other work runnable right now, system-wide (the median of a few looks).

    ``None`` where the system does not say (not Linux). The calling thread is not counted.
    """
    seen = []
    for i in range(samples):
        running = _procs_running()
        if running is None:
            return None
        seen.append(running - 1)  # this thread, reading /proc/stat, is running
        if i + 1 < samples:
            time.sleep(gap_s)
    return max(0, int(statistics.median(seen)))


def idle_cores(limit: int | None = None) -> int:
    """Threads to use now: the cores no other runnable work takes, at least 1, at most ``limit``.

    Where the system does not say what runs, every core (up to ``limit``).
    """
    total = cores()
    others = busy_others()
    free = total if others is None else total - others
    return max(1, min(free, limit or total))
