"""Where the lending audit's memory goes, phase by phase (Linux).

    python benchmarks/memory.py REGISTER.parquet                    # the whole audit, 2 workers, outputs in a temp dir
    python benchmarks/memory.py REGISTER.parquet --workers 1
    python benchmarks/memory.py REGISTER.parquet --stop-after register   # read + register-wide pass only

Runs ``audit()`` and ``write_outputs`` in this process and marks each phase by wrapping the
functions ``audit()`` calls (nothing in the package changes): reading the pieces and cleaning
them, concatenating them, the race and ethnicity proxies, the register-wide pass (partitions,
similarity scaling, redlining), the partitions (dispatching them and holding their results), the
gathering (findings, numbering, tables) and writing the outputs. For each phase it prints the
main process's resident memory when the phase begins and ends and its exact peak within the
phase: the kernel's high-water mark (``VmHWM``), reset at every phase boundary by writing 5 to
``/proc/self/clear_refs``, so no sampling misses a peak. A thread samples the resident memory
of the main process and of every process below it (the forkserver and the workers) every 0.1 s:
"in all" is the largest sum seen. Then the cleaned register's bytes per row by column
(``DataFrame.memory_usage(deep=True)``) and the bytes of the partition results spilled until
gathering (the files each partition's worker wrote: its explanation records and the rest of its result).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MB = 1e6


def resident() -> int:
    """Resident bytes of this process now."""
    return _status_kib(os.getpid(), "VmRSS") * 1024


def high_water() -> int:
    """Peak resident bytes of this process since the last ``reset_high_water``."""
    return _status_kib(os.getpid(), "VmHWM") * 1024


def reset_high_water() -> None:
    with open("/proc/self/clear_refs", "w") as handle:  # 5: reset the peak resident set size (Linux 4.0+)
        handle.write("5")


def _status_kib(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return 0
    found = re.search(rf"^{key}:\s+(\d+)", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children...)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


@dataclass
class Phase:
    name: str
    depth: int
    start: int = 0  # resident bytes when it began
    end: int = 0
    peak: int = 0  # exact peak of the main process within it
    seconds: float = 0.0
    cpu: float = 0.0  # CPU seconds of the main process (``time.process_time``: every thread of it)


@dataclass
class Recorder:
    """Phases in the order they began; the peak of each from the kernel's high-water mark."""

    phases: list[Phase] = field(default_factory=list)
    stack: list[Phase] = field(default_factory=list)
    in_all: int = 0  # largest sum of main + descendants sampled
    workers_peak: int = 0  # largest sum of the descendants sampled
    _stop: threading.Event = field(default_factory=threading.Event)

    def _settle(self) -> None:
        """Close the running stretch: its high-water mark goes to every open phase."""
        peak = high_water()
        for phase in self.stack:
            phase.peak = max(phase.peak, peak)
        reset_high_water()

    def begin(self, name: str) -> Phase:
        self._settle()
        phase = Phase(name, len(self.stack), start=resident())
        phase.peak = phase.start
        phase.seconds = time.perf_counter()
        phase.cpu = time.process_time()
        self.phases.append(phase)
        self.stack.append(phase)
        return phase

    def end(self, phase: Phase) -> None:
        self._settle()
        phase.end = resident()
        phase.seconds = time.perf_counter() - phase.seconds
        phase.cpu = time.process_time() - phase.cpu
        self.stack.remove(phase)

    def sample(self, interval: float = 0.1) -> None:
        me = os.getpid()
        while not self._stop.wait(interval):
            below = sum(_status_kib(pid, "VmRSS") * 1024 for pid in descendants(me))
            self.workers_peak = max(self.workers_peak, below)
            self.in_all = max(self.in_all, resident() + below)

    def start_sampling(self) -> threading.Thread:
        thread = threading.Thread(target=self.sample, name="memory-sampler", daemon=True)
        thread.start()
        return thread

    def stop_sampling(self) -> None:
        self._stop.set()


class Stop(Exception):
    """Raised to end the audit after the phase ``--stop-after`` names."""


def wrap(recorder: Recorder, module: Any, name: str, phase: str, after: Callable[[Any], None] | None = None) -> None:
    """Replace ``module.name`` by a function that records ``phase`` around the original."""
    original = getattr(module, name)

    @functools.wraps(original)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        mark = recorder.begin(phase)
        try:
            result = original(*args, **kwargs)
        finally:
            recorder.end(mark)
        if after is not None:
            after(result)
        return result

    setattr(module, name, recorded)


def run(register: Path, workers: int, stop_after: str | None, out: Path) -> None:
    from reasoner.lending.audit import run as audit_module
    from reasoner.lending.outputs import write as write_module
    from reasoner.lending.registers import hmda

    recorder = Recorder()
    held: dict[str, Any] = {"frame": None, "results": 0, "partitions": 0, "biggest": 0}

    def frame_read(cleaned: Any) -> None:
        compact = getattr(cleaned, "held", None)  # held compact (``compact.CompactFrame``), or the frame itself
        frame = cleaned.frame if compact is None else compact.held
        held["frame"] = frame.memory_usage(deep=True, index=True)
        held["rows"] = len(frame)
        held["dtypes"] = {
            name: f"{dtype}" if compact is None or name not in compact.encoded else f"{compact.dtypes[name]} as codes"
            for name, dtype in frame.dtypes.items()
        }
        if stop_after == "read":
            raise Stop

    def stop_if(name: str) -> Callable[[Any], None]:
        def check(_: Any) -> None:
            if stop_after == name:
                raise Stop

        return check

    original_execute = audit_module._execute

    def execute(tasks: Iterator[Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
        if stop_after == "register":
            raise Stop
        mark = recorder.begin("partitions (dispatch, results spilled)")
        # _execute(tasks, workers, cluster, directory)
        directory = Path(kwargs["directory"] if "directory" in kwargs else args[2])
        try:
            for spilled in original_execute(tasks, *args, **kwargs):
                # the partition's files as written (its records and the rest of its result), on disk until gathered
                size = sum(path.stat().st_size for path in directory.glob(f"{spilled.index:08d}.*"))
                held["results"] += size
                held["partitions"] += 1
                held["biggest"] = max(held["biggest"], size)
                yield spilled
        finally:
            recorder.end(mark)

    wrap(recorder, hmda, "_combined", "read: concat of the cleaned pieces")
    wrap(recorder, audit_module, "read_clean", "read + clean (pieces, concat)", frame_read)
    wrap(recorder, audit_module, "with_proxies", "race and ethnicity proxies")
    wrap(recorder, audit_module, "_partitions", "register-wide: partitions")
    wrap(recorder, audit_module, "_scaling", "register-wide: similarity scaling")
    # the register-wide part; with workers the lenders' rows are made while the partitions run (run._RedliningWriter)
    wrap(recorder, audit_module, "register_redlining_cells", "register-wide: redlining cells", stop_if("register"))
    audit_module._execute = execute  # type: ignore[assignment]
    wrap(recorder, audit_module, "_gather_findings", "gather: findings")
    wrap(recorder, audit_module, "_numberings", "gather: numberings")
    wrap(recorder, audit_module, "_gather_tables", "gather: tables")
    wrap(recorder, write_module, "write_outputs", "writing the outputs")

    sampler = recorder.start_sampling()
    reset_high_water()
    started, load = time.perf_counter(), os.getloadavg()[0]
    whole = recorder.begin("audit()")
    result = None
    try:
        result = audit_module.audit([ROOT / "rules"], register, workers=workers)
    except Stop:
        pass
    finally:
        recorder.end(whole)
    if result is not None:
        write_module.write_outputs(result, out, force=True)
        result.explanations.close()
        largest_worker = result.peak_memory.get("largest worker", 0) if workers > 1 else 0
    else:
        largest_worker = 0
    recorder.stop_sampling()
    sampler.join()
    load = max(load, os.getloadavg()[0])
    _report(recorder, held, register, workers, time.perf_counter() - started, load, largest_worker)


def _report(
    recorder: Recorder,
    held: dict[str, Any],
    register: Path,
    workers: int,
    seconds: float,
    load: float,
    largest_worker: int,
) -> None:
    rows = held.get("rows", 0)
    print(f"{register} ({rows:,} rows), {workers} worker(s), {seconds:.0f} s, load average {load:.1f}")
    print()
    print("| phase | MB at start | peak MB | MB at end | s | main CPU s |")
    print("|---|---|---|---|---|---|")
    for phase in recorder.phases:
        name = "&nbsp;&nbsp;" * phase.depth + phase.name
        print(
            f"| {name} | {phase.start / MB:,.0f} | {phase.peak / MB:,.0f} | {phase.end / MB:,.0f} "
            f"| {phase.seconds:.1f} | {phase.cpu:.1f} |"
        )
    print()
    print(
        f"main process peak {max(phase.peak for phase in recorder.phases) / MB:,.0f} MB; "
        f"largest worker {largest_worker / MB:,.0f} MB; sampled main + workers at once {recorder.in_all / MB:,.0f} MB "
        f"(workers and forkserver together {recorder.workers_peak / MB:,.0f} MB)"
    )
    if held["partitions"]:
        print(
            f"partition results on disk until gathering (as written): {held['results'] / MB:,.0f} MB for "
            f"{held['partitions']:,} "
            f"partitions (largest {held['biggest'] / MB:,.1f} MB)"
        )
    usage = held["frame"]
    if usage is None:
        return
    total = int(usage.sum())
    print(f"cleaned register as held: {total / MB:,.0f} MB, {total / max(rows, 1):,.0f} bytes a row")
    print()
    print("| column | dtype | bytes a row |")
    print("|---|---|---|")
    for name, size in usage.sort_values(ascending=False).items():
        dtype = held["dtypes"].get(name, "index")
        print(f"| {name} | {dtype} | {size / max(rows, 1):,.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("register", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stop-after", choices=("read", "register"), help="end after this phase")
    parser.add_argument("--out", type=Path, help="output directory (default: a temporary one, removed)")
    options = parser.parse_args()
    if not sys.platform.startswith("linux"):
        parser.error("reads /proc: Linux only")
    if options.out is not None:
        run(options.register, options.workers, options.stop_after, options.out)
        return
    with tempfile.TemporaryDirectory(prefix="reasoner-memory-") as directory:
        run(options.register, options.workers, options.stop_after, Path(directory) / "out")


if __name__ == "__main__":
    main()
