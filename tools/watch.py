"""Keep one synth process warm and re-synthesize when config/, constructs/ or function_src/
change; print what changed in each stack (resources added, changed, removed).

    make watch
    .venv/bin/python tools/watch.py [--config-dir config] [--outdir cdktf.out] [--once]

The provider and jsii are loaded once, so a re-synth costs only the constructs and the synth
itself (a new cdktf App each time; an App can synthesize only once). What is re-done depends
on what changed:
- config/<env>.toml only: just the environments whose settings changed are synthesized; the
  other stacks are kept as they are on disk (manifest.json is merged the way cdktf writes it);
- function_src/: every stack (the zip is part of each stack);
- constructs/ai_workflow/ or constructs/ai_workflow_app/: those modules are dropped from
  sys.modules and imported again, then every stack; a change to cdktf_fastsynth (which
  hooks imports in this process and in Node) re-executes the whole process instead.
Bad settings print their one-line errors and the previous cdktf.out stays untouched, as with
`main.py`; the watcher keeps going. Polls file mtimes (stdlib only) every --interval seconds.
Ctrl-C stops it at any point with one line, `stopped.` (stderr), and exit status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The library and the app: reloaded in place when their files change.
PACKAGES = ("ai_workflow", "ai_workflow_app")
APP = "ai_workflow_app"
# Changing this package re-executes the process: it hooks imports (Python and Node) and
# starts the jsii kernel, once, at start-up.
FASTSYNTH = "cdktf_fastsynth"
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}

Snapshot = dict[str, tuple[int, int]]


# --- diff of synthesized stacks (pure) ------------------------------------------------------


@dataclass(frozen=True)
class StackDiff:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def resource_index(stack: Mapping[str, Any] | None) -> dict[str, Any]:
    """`type.name` -> body for every resource (data sources as `data.type.name`)."""
    index: dict[str, Any] = {}
    if not stack:
        return index
    for section, prefix in (("resource", ""), ("data", "data.")):
        for kind, items in (stack.get(section) or {}).items():
            for name, body in items.items():
                index[f"{prefix}{kind}.{name}"] = body
    return index


def diff_stack(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> StackDiff:
    """Resources added, changed (any attribute differs) and removed, each sorted."""
    before, after = resource_index(old), resource_index(new)
    return StackDiff(
        added=tuple(sorted(after.keys() - before.keys())),
        changed=tuple(sorted(k for k in after.keys() & before.keys() if after[k] != before[k])),
        removed=tuple(sorted(before.keys() - after.keys())),
    )


def format_diffs(
    old: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
    max_listed: int = 20,
) -> list[str]:
    """One summary line per stack (sorted), then `+`/`~`/`-` lines per resource (at most
    `max_listed` per stack, then a count of the rest)."""
    lines: list[str] = []
    for name in sorted(old.keys() | new.keys()):
        diff = diff_stack(old.get(name), new.get(name))
        if name not in new:
            lines.append(f"{name}: stack removed ({len(diff.removed)} resources)")
            continue
        state = "new stack, " if name not in old else ""
        if not diff:
            lines.append(f"{name}: {state}no resource changes")
            continue
        lines.append(
            f"{name}: {state}{len(diff.added)} added, {len(diff.changed)} changed, "
            f"{len(diff.removed)} removed"
        )
        listed = [f"  + {r}" for r in diff.added] + [f"  ~ {r}" for r in diff.changed]
        listed += [f"  - {r}" for r in diff.removed]
        if len(listed) > max_listed:
            listed = [*listed[:max_listed], f"  ... and {len(listed) - max_listed} more"]
        lines += listed
    return lines


# --- manifest.json the way cdktf writes it (json-stable-stringify, space 2) -----------------


def stable_stringify(value: Any, level: int = 0) -> str:
    """json-stable-stringify with `{space: 2}`, as cdktf writes manifest.json (synth.py's)."""
    synth = importlib.import_module(f"{APP}.synth")
    return str(synth.stable_stringify(value, level))


# --- the watcher ---------------------------------------------------------------------------


def snapshot(dirs: Iterable[Path]) -> Snapshot:
    """(mtime_ns, size) of every file under `dirs`, skipping caches and hidden folders."""
    found: Snapshot = {}
    for top in dirs:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [
                d
                for d in dirnames
                if d not in SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
            ]
            for name in filenames:
                if name.endswith((".pyc", ".swp", "~")) or name.startswith(".#"):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                found[path] = (st.st_mtime_ns, st.st_size)
    return found


def changed_paths(old: Snapshot, new: Snapshot) -> set[str]:
    return {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}


def read_stacks(outdir: Path) -> dict[str, dict[str, Any]]:
    stacks: dict[str, dict[str, Any]] = {}
    for path in sorted(outdir.glob("stacks/*/cdk.tf.json")):
        try:
            stacks[path.parent.name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return stacks


@dataclass
class Result:
    """What one re-synth did: `errors` set means nothing was written."""

    synthesized: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Watcher:
    """Re-synthesizes `config_dir` into `outdir`; `step(changed)` does one round."""

    def __init__(self, config_dir: Path, source_dir: Path, outdir: Path, constructs_dir: Path):
        self.config_dir = config_dir
        self.source_dir = source_dir
        self.outdir = outdir
        self.constructs_dir = constructs_dir
        self.envs: dict[str, Any] = {}  # env name -> EnvironmentConfig last synthesized
        self.stacks = read_stacks(outdir)  # what is on disk now, for the first diff

    def watched_dirs(self) -> list[Path]:
        return [self.config_dir, self.constructs_dir, self.source_dir]

    def needs_reexec(self, changed: Iterable[str]) -> bool:
        package = self.constructs_dir / FASTSYNTH
        return any(Path(p).parent == package for p in changed)

    def step(self, changed: Iterable[str] | None = None) -> Result:
        """One re-synth. `changed=None` means everything (the first round)."""
        started = time.perf_counter()
        paths = None if changed is None else [Path(p) for p in changed]
        result = Result()
        full = paths is None or any(not _under(p, self.config_dir) for p in paths)
        try:
            if paths is not None and any(_under(p, self.constructs_dir) for p in paths):
                reload_package()
            config = importlib.import_module(f"{APP}.config")
            files = sorted(self.config_dir.glob("*.toml"))
            if not files:
                raise config.ConfigError([f"{self.config_dir.as_posix()}: no <env>.toml files"])
            envs = config.load_environments(files)
            todo = [e for e in envs if full or self.envs.get(e.name) != e]
            names = {e.name for e in envs}
            partial = not full and self._can_keep(e.name for e in envs if e not in todo)
            if not partial:
                todo = envs
            if todo or names != set(self.envs):
                self._synth(envs, todo, partial)
        except Exception as exc:  # keep watching whatever the edit broke
            result.errors = _error_lines(exc)
            result.seconds = time.perf_counter() - started
            return result
        result.synthesized = [e.name for e in todo]
        result.kept = sorted(names - set(result.synthesized))
        result.seconds = time.perf_counter() - started
        new_stacks = read_stacks(self.outdir)
        result.lines = format_diffs(self.stacks, new_stacks)
        self.stacks = new_stacks
        self.envs = {e.name: e for e in envs}
        return result

    def _can_keep(self, names: Iterable[str]) -> bool:
        """Unchanged stacks can be kept only if this process wrote them and they are there."""
        return (self.outdir / "manifest.json").is_file() and all(
            name in self.envs and (self.outdir / "stacks" / name).is_dir() for name in names
        )

    def _synth(self, envs: Sequence[Any], todo: Sequence[Any], partial: bool) -> None:
        # Only `todo` changed: synth.py replaces just those stacks, keeps the others (with
        # their .terraform/) and merges manifest.json; a stack whose config is gone is removed.
        synth = importlib.import_module(f"{APP}.synth")
        synth.synth_environments(
            todo if partial else envs,
            self.source_dir,
            self.outdir,
            configured=[e.name for e in envs],
        )


def _under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _error_lines(exc: BaseException) -> list[str]:
    problems = getattr(exc, "problems", None)
    if isinstance(problems, list):
        return [f"error: {p}" for p in problems]
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return [f"error: {last}"]


def reload_package() -> None:
    """Drop the library and app modules and import them again (cdktf_fastsynth, whose
    hooks are live, stays); on failure the previous modules are put back and the error
    raised."""
    old = {name: mod for name, mod in sys.modules.items() if _reloadable(name)}
    for name in old:
        del sys.modules[name]
    importlib.invalidate_caches()
    try:
        importlib.import_module(f"{APP}.stack")
    except BaseException:
        for name in [n for n in sys.modules if _reloadable(n)]:
            del sys.modules[name]
        sys.modules.update(old)
        raise


def _reloadable(module: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in PACKAGES)


def report(result: Result, reason: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    if result.errors:
        print(f"[{stamp}] {reason}: not synthesized, cdktf.out left as it was", flush=True)
        for line in result.errors:
            print(line, file=sys.stderr, flush=True)
        return
    what = ", ".join(result.synthesized) or "nothing"
    kept = f" (kept {', '.join(result.kept)})" if result.kept else ""
    print(f"[{stamp}] {reason}: synthesized {what} in {result.seconds:.2f} s{kept}", flush=True)
    for line in result.lines:
        print(f"  {line}", flush=True)


def _describe(changed: set[str]) -> str:
    shown = sorted(os.path.relpath(p) for p in changed)
    return ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


@contextlib.contextmanager
def children_in_own_process_group() -> Iterator[None]:
    """Processes started inside (the jsii kernel, a Node child of this process) get a process
    group of their own, so a terminal's Ctrl-C reaches only this process. Otherwise Node dies
    of the same SIGINT, and jsii's exit handler, writing its goodbye to the dead kernel,
    prints a BrokenPipeError traceback. This way the kernel is stopped by that handler the
    normal way (and removes its temporary files). It still ends with this process: jsii's
    kernel exits when its stdin closes."""
    original = subprocess.Popen

    class Popen(original):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if not kwargs.get("start_new_session"):
                kwargs.setdefault("process_group", 0)
            super().__init__(*args, **kwargs)

    subprocess.Popen = Popen  # type: ignore[misc]
    try:
        yield
    finally:
        subprocess.Popen = original  # type: ignore[misc]


def main(argv: list[str] | None = None) -> int:
    try:
        return watch(argv)
    except KeyboardInterrupt:
        # jsii's exit handler still has to stop the kernel: a second Ctrl-C must not cut it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("stopped.", file=sys.stderr, flush=True)
        return 0


def watch(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-dir", type=Path, default=Path("config"))
    parser.add_argument("--source-dir", type=Path, default=Path("function_src"))
    parser.add_argument("--constructs-dir", type=Path, default=Path("constructs"))
    parser.add_argument(
        "--outdir", type=Path, default=Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out"))
    )
    parser.add_argument("--interval", type=float, default=0.2, help="poll period in seconds")
    parser.add_argument("--once", action="store_true", help="synthesize once, report, exit")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with children_in_own_process_group():
        importlib.import_module(FASTSYNTH).enable()  # opt in, before cdktf is imported
        importlib.import_module(f"{APP}.stack")  # the provider import, paid once here
    watcher = Watcher(args.config_dir, args.source_dir, args.outdir, args.constructs_dir)
    state = snapshot(watcher.watched_dirs())
    first = watcher.step()
    first.seconds = time.perf_counter() - started
    report(first, "start (cold, includes imports)")
    if args.once:
        return 2 if first.errors else 0
    print(f"watching {', '.join(map(str, watcher.watched_dirs()))} (Ctrl-C to stop)", flush=True)
    while True:
        time.sleep(args.interval)
        current = snapshot(watcher.watched_dirs())
        if current == state:
            continue
        # Let an editor finish writing: wait until two polls agree.
        while True:
            time.sleep(args.interval)
            settled = snapshot(watcher.watched_dirs())
            if settled == current:
                break
            current = settled
        changed = changed_paths(state, current)
        state = current
        if watcher.needs_reexec(changed):
            print(f"{_describe(changed)} changed: restarting the watcher", flush=True)
            sys.stdout.flush()
            os.execv(sys.executable, [sys.executable, *sys.argv])
        report(watcher.step(changed), f"{_describe(changed)} changed")


if __name__ == "__main__":
    sys.exit(main())
