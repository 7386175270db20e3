"""What a running pipeline costs, measured from outside it (benchmarks/scale.py's curve):
RSS, CPU seconds and bytes written of a process tree, sampled on a thread
(`TreeSampler`); each sample attributed to the component whose MLMD execution
interval holds it (`attribute_peaks`, `value_at_starts`, `attribute_deltas`);
the executions read from MLMD's sqlite tables without loading MLMD (`executions`);
a folder's size on disk (`dir_bytes`)."""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Sequence

SAMPLE_EVERY_S = 0.2


# ---------------------------------------------------------- attribution

def attribute_peaks(samples: Sequence[tuple[float, float]],
                    intervals: Sequence[tuple[str, float, float]]) -> dict[str, float]:
    """Largest sample value inside each (name, start, end) interval (inclusive).

    A component shorter than the sampling period may hold no sample: it gets the
    sample nearest its interval's middle. Samples are (time, value); a name that
    appears twice keeps its larger peak."""
    out: dict[str, float] = {}
    if not samples:
        return out
    for name, start, end in intervals:
        inside = [v for t, v in samples if start <= t <= end]
        if not inside:
            mid = (start + end) / 2
            inside = [min(samples, key=lambda s: abs(s[0] - mid))[1]]
        out[name] = max(out.get(name, inside[0]), max(inside))
    return out


def value_at_starts(samples: Sequence[tuple[float, float]],
                    intervals: Sequence[tuple[str, float, float]]) -> dict[str, float]:
    """The last sample at or before each interval's start (else its first sample): what a
    component inherits, e.g. the RSS earlier components left in the process."""
    out: dict[str, float] = {}
    for name, start, _ in intervals:
        before = [v for t, v in samples if t <= start]
        if before:
            out[name] = before[-1]
        elif samples:
            out[name] = samples[0][1]
    return out


def attribute_deltas(samples: Sequence[tuple[float, float]],
                     intervals: Sequence[tuple[str, float, float]]) -> dict[str, float]:
    """Growth of a cumulative counter (e.g. bytes written) over each interval: the last
    sample at or before its end minus the last sample before its start (0 before the
    first sample)."""
    out: dict[str, float] = {}
    for name, start, end in intervals:
        before = [v for t, v in samples if t < start]
        upto = [v for t, v in samples if t <= end]
        base = before[-1] if before else 0.0
        top = upto[-1] if upto else base
        out[name] = out.get(name, 0.0) + max(0.0, top - base)
    return out


# ------------------------------------------------------------- sampling

class TreeSampler:
    """Samples RSS (summed) and write_bytes (summed) of a process and its descendants."""

    def __init__(self, pid: int, every_s: float = SAMPLE_EVERY_S):
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid)
        self.every_s = every_s
        self.rss: list[tuple[float, float]] = []      # (ms since epoch, bytes)
        self.written: list[tuple[float, float]] = []  # (ms since epoch, cumulative bytes of live processes)
        self.cpu: list[tuple[float, float]] = []      # (ms since epoch, cumulative CPU seconds, reaped children too)
        self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        ps = self._psutil
        try:
            procs = [self.root] + self.root.children(recursive=True)
        except ps.Error:
            return
        rss = wrote = cpu = 0
        alive = 0
        for p in procs:
            try:
                rss += p.memory_info().rss
                alive += 1
                t = p.cpu_times()
                cpu += t.user + t.system + t.children_user + t.children_system
                try:
                    wrote += p.io_counters().write_bytes
                except (ps.Error, AttributeError):
                    pass
            except ps.Error:
                continue
        if alive:
            now = time.time() * 1000
            self.rss.append((now, float(rss)))
            self.written.append((now, float(wrote)))
            self.cpu.append((now, float(cpu)))
            self.max_processes = max(self.max_processes, alive)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)


# ------------------------------------------------------------- MLMD, disk

def executions(metadata_path: str, pipeline_name: str) -> list[tuple[str, float, float, str]]:
    """(node id, start ms, end ms, state) of every execution in the store, in start order.
    Read with sqlite3 (MLMD's own tables) so this process never loads MLMD."""
    states = {0: "UNKNOWN", 1: "NEW", 2: "RUNNING", 3: "COMPLETE", 4: "FAILED", 5: "CACHED", 6: "CANCELED"}
    con = sqlite3.connect(f"file:{metadata_path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT e.id, e.create_time_since_epoch, e.last_update_time_since_epoch, e.last_known_state, c.name "
            "FROM Execution e JOIN Association a ON a.execution_id = e.id JOIN Context c ON c.id = a.context_id "
            "WHERE c.name LIKE ? ORDER BY e.create_time_since_epoch, e.id", (pipeline_name + ".%",)).fetchall()
    finally:
        con.close()
    return [(ctx[len(pipeline_name) + 1:], float(start), float(end), states.get(state, str(state)))
            for _, start, end, state, ctx in rows]


def dir_bytes(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
