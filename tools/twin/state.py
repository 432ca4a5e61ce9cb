"""Where a twin keeps its state: `<twin dir>/<env>/` (default `.twin/<env>/` in the project).

    state.json      what is running: ports, process ids, the stack it runs (written when up)
    twin.log        the supervisor: what it created, every log entry a sink routed, problems
    emulator.log    Google's Pub/Sub emulator
    functions/<function name>.log   each Functions Framework server (the handler's JSON lines)
    source/         the functions' source, unpacked from the stack's zip asset

Each environment has its own folder and its own free ports, so twins of two environments run
side by side. tools/publish.py finds a running twin here (`running_twin`), so `make publish`
reaches its emulator without PUBSUB_EMULATOR_HOST.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TWIN_DIR_ENV = "AI_WORKFLOW_TWIN_DIR"
STATE_FILE = "state.json"


def twin_root() -> Path:
    """Where every environment's folder is: $AI_WORKFLOW_TWIN_DIR, else `.twin/` here."""
    return Path(os.environ.get(TWIN_DIR_ENV) or REPO / ".twin")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, pgrp, ...] ([] if gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
    return stat.rsplit(")", 1)[-1].split()


def start_time(pid: int) -> str | None:
    """When the process started (clock ticks since boot), which tells a process from a later
    one that reuses its pid; None if it is gone (or a zombie)."""
    fields = _stat_fields(pid)
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


def same_process(pid: int, started: str | None) -> bool:
    """`pid` is alive and is the process that started at `started`."""
    return started is not None and start_time(pid) == started


def group_members(pgid: int) -> list[int]:
    """The live processes in process group `pgid` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
                members.append(int(entry.name))
    return members


@dataclass
class State:
    directory: Path
    data: dict[str, Any]

    @property
    def env(self) -> str:
        return str(self.data["env"])

    @property
    def project(self) -> str:
        return str(self.data["project"])

    @property
    def emulator_host(self) -> str:
        return str(self.data["emulator"]["host"])

    @property
    def vertex_url(self) -> str:
        return str(self.data["vertex"]["url"])

    @property
    def supervisor_pid(self) -> int:
        return int(self.data["supervisor"]["pid"])

    @property
    def ready(self) -> bool:
        return bool(self.data.get("ready"))

    def running(self) -> bool:
        """The supervisor that wrote this is still alive (and is that supervisor)."""
        return same_process(self.supervisor_pid, self.data["supervisor"].get("start"))


def state_dir(env: str, root: Path | None = None) -> Path:
    return (root or twin_root()) / env


def read_state(directory: Path) -> State | None:
    try:
        data = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return State(directory, data) if isinstance(data, dict) else None


def write_state(directory: Path, data: dict[str, Any]) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    temporary = directory / f".{STATE_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    temporary.replace(directory / STATE_FILE)


def running_twin(
    env: str | None = None, project: str | None = None, root: Path | None = None
) -> State | None:
    """A twin that is up: the one of `env`, else the first whose project is `project`."""
    base = root or twin_root()
    if env is not None:
        candidates = [base / env]
    else:
        candidates = sorted(p for p in base.glob("*") if p.is_dir()) if base.is_dir() else []
    for directory in candidates:
        state = read_state(directory)
        if state is None or not state.ready or not state.running():
            continue
        if project is None or state.project == project:
            return state
    return None
