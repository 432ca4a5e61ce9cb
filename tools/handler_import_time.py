"""Measure the handler's cold-start import: `import main` (function_src/main.py) in N fresh
Python processes; print the median in milliseconds (or JSON with --json).

    .venv/bin/python tools/handler_import_time.py            # 7 runs
    .venv/bin/python tools/handler_import_time.py -n 15 --json --budget-ms 300

The handler's environment comes from this process's environment, with tools/run_function.py's
local defaults for anything unset (main.py validates it at import). Each child also reports
whether flask, requests or google.auth got imported: they must not be (they load lazily).
Exit status 1 if an import fails, or if --budget-ms is given and the median exceeds it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys

from run_function import SOURCE, local_environment

HEAVY = ("flask", "werkzeug", "requests", "google.auth", "urllib3")
CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
import main
elapsed = time.perf_counter() - started
heavy = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
print(json.dumps({"ms": elapsed * 1000, "heavy": heavy}))
"""


def measure_once(env: dict[str, str]) -> tuple[float, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(SOURCE.parent), json.dumps(HEAVY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"import main failed ({result.returncode}): {result.stderr.strip()}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return float(report["ms"]), list(report["heavy"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=7, help="fresh processes (default 7)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--budget-ms", type=float, help="fail if the median exceeds this")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: expected a positive number of runs")

    env = local_environment()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        measure_once(env)  # warm the bytecode cache and the OS page cache; not counted
        samples = []
        heavy: set[str] = set()
        for _ in range(args.runs):
            ms, loaded = measure_once(env)
            samples.append(ms)
            heavy.update(loaded)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"handler_import_time.py: error: {exc}", file=sys.stderr)
        return 1
    median = statistics.median(samples)
    over_budget = args.budget_ms is not None and median > args.budget_ms
    if args.json:
        print(
            json.dumps(
                {
                    "metric": "handler_import_main_ms",
                    "median_ms": round(median, 1),
                    "min_ms": round(min(samples), 1),
                    "max_ms": round(max(samples), 1),
                    "samples_ms": [round(s, 1) for s in samples],
                    "runs": args.runs,
                    "heavy_modules_imported": sorted(heavy),
                    "budget_ms": args.budget_ms,
                    "within_budget": None if args.budget_ms is None else not over_budget,
                    "python": platform.python_version(),
                }
            )
        )
    else:
        budget = "" if args.budget_ms is None else f" (budget {args.budget_ms:g} ms)"
        print(
            f"import main: median {median:.1f} ms over {args.runs} fresh processes, "
            f"min {min(samples):.1f}, max {max(samples):.1f}{budget}"
        )
        if heavy:
            print(f"warning: imported at import time: {', '.join(sorted(heavy))}")
    return 1 if over_budget or heavy else 0


if __name__ == "__main__":
    sys.exit(main())
