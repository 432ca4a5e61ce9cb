"""`make help` lists every target; bare `make` still synthesizes."""

from __future__ import annotations

import re
import subprocess

from environments import ROOT

MAKEFILE = (ROOT / "Makefile").read_text()


def make(*args: str) -> str:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def phony_targets() -> set[str]:
    match = re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", MAKEFILE, re.M)
    assert match is not None
    return set(match.group(1).replace("\\\n", " ").split())


def test_help_lists_every_target_with_a_description() -> None:
    shown = make("help")
    listed = dict(re.findall(r"^  make (\S+)\s+(\S.*)$", shown, re.M))
    assert set(listed) == phony_targets()
    assert all(len(description) > 10 for description in listed.values())
    # Parameters come on the continuation lines, under their target.
    assert '(ENV=qa or ENV="qa dev": only those' in shown.split("make cdktf-synth")[0]


def test_bare_make_runs_synth() -> None:
    assert make("-n", "--always-make").count("main.py") >= 1
    assert ".DEFAULT_GOAL := synth" in MAKEFILE


def test_synth_env_synthesizes_only_that_environment() -> None:
    assert 'main.py --env "qa"\n' in make("-n", "synth", "ENV=qa")
    assert 'main.py --env "qa" --env "dev"\n' in make("-n", "synth", "ENV=qa dev")
    assert "--env" not in make("-n", "synth")


def command(*args: str) -> str:
    """`make -n` of a target: its command on one line, whitespace collapsed."""
    return " ".join(make("-n", *args).replace("\\\n", " ").split())


def test_the_operator_targets_pass_their_parameters() -> None:
    assert command("smoke", "ENV=prod", "WORKFLOW=train", "TIMEOUT=30").endswith(
        'tools/smoke.py --env "prod" --workflow "train" --timeout "30"'
    )
    assert command("smoke").endswith('tools/smoke.py --env "dev" --timeout "120"')
    replay = command(
        "replay-dead-letters", "WORKFLOW=ingest", "LIMIT=5", "ERROR=bad_json", "DRY_RUN=1"
    )
    assert replay.endswith(
        'tools/replay_dead_letters.py --env "dev" --workflow "ingest" --limit "5" '
        '--error "bad_json" --dry-run'
    )
    assert command("smoke", "PROJECT=p", "ALLOW_OTHER_PROJECT=1").endswith(
        '--project "p" --allow-other-project'
    )
