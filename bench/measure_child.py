"""Run a Python script as __main__ and report this process's and its children's peak RSS.

    python bench/measure_child.py REPORT.json main.py [ARGS...]

Used by bench/run_bench.py, one cold process per sample. The report is written from an
atexit handler registered before the script runs; atexit handlers run last-in first-out,
so it runs after jsii's own handler has stopped and reaped its Node process. Then
RUSAGE_SELF is the Python process alone and RUSAGE_CHILDREN is the largest of the reaped
descendants: the jsii kernel `node` (by default the only one; with jsii's stock relay,
the relay `node` and the kernel it spawns and reaps). Nothing else is spawned by a synth.
"""

from __future__ import annotations

import atexit
import json
import resource
import runpy
import sys
from pathlib import Path


def _report(path: str) -> None:
    data = {
        "python_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "node_peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)


def main() -> None:
    report, script, *args = sys.argv[1:]
    atexit.register(_report, report)
    sys.argv = [script, *args]
    sys.path[0] = str(Path(script).resolve().parent)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
