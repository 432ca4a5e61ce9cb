"""Synthesize every environment in config/ into cdktf.out/stacks/<env>/cdk.tf.json.

    .venv/bin/python main.py                      # all environments (what `make synth` runs)
    .venv/bin/python main.py --env dev            # only some (`make synth ENV=dev`)
    .venv/bin/python main.py --config-dir other/  # settings from elsewhere

`--env` replaces only those stacks' directories and merges their entries into
manifest.json; every other stack (and its .terraform/) is kept as it is. Without --env, the
stacks of every config/<env>.toml are replaced and a stack whose config is gone is removed.
`cdktf synth` runs this file too (see cdktf.json). Bad settings print one line per
problem, naming the file, key, value and what is allowed, exit 2 and leave the previous
output untouched; so does an output that cannot be written (nothing is changed).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

try:
    from ai_workflow.source_bundle import SecretInSourceError
    from ai_workflow_app import ConfigError, load_environments
    from ai_workflow_app.synth import OutputError, synth_environments
except ModuleNotFoundError as missing:
    if missing.name not in ("ai_workflow", "ai_workflow_app", "cdktf", "cdktn", "constructs"):
        raise
    name = "ai_workflow" if missing.name == "ai_workflow_app" else missing.name
    print(
        f"main.py: {name} is not installed for {sys.executable}; "
        "run `make synth` (it installs .venv) or `.venv/bin/python main.py`",
        file=sys.stderr,
    )
    sys.exit(2)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"main.py: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=Path("config"),
        help="directory of <env>.toml files (default: config)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="environment to synthesize; repeat for several (default: all)",
    )
    parser.add_argument(
        "--outdir",
        type=Path,
        default=Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out")),
        help="output directory (default: $CDKTF_OUTDIR or cdktf.out)",
    )
    parser.add_argument(
        "--source-dir",
        type=Path,
        default=Path("function_src"),
        help="handler source to bundle (default: function_src)",
    )
    return parser.parse_args(argv)


def config_files(config_dir: Path, names: list[str]) -> list[Path]:
    if not config_dir.is_dir():
        raise ConfigError([f"--config-dir: got {config_dir.as_posix()!r}, allowed a directory"])
    available = {p.stem: p for p in sorted(config_dir.glob("*.toml"))}
    if not available:
        raise ConfigError([f"{config_dir.as_posix()}: no <env>.toml files"])
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(
            [f"--env: got {n!r}, allowed one of {', '.join(available)}" for n in unknown]
        )
    return [available[n] for n in (names or list(available))]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        envs = load_environments(config_files(args.config_dir, args.env))
        for notice in (notice for env in envs for notice in env.notices):
            print(f"warning: {notice}", file=sys.stderr)
        # The app opts in to the synth speed-ups, once the settings are known to be good
        # (a bad config never starts Node) and before cdktf is imported.
        import cdktf_fastsynth

        cdktf_fastsynth.enable()

        # A full synth owns every stack: those without a config any more are stale.
        configured = None if args.env else [env.name for env in envs]
        written = synth_environments(envs, args.source_dir, args.outdir, configured=configured)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except (FileNotFoundError, SecretInSourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for env, path in zip(envs, written.stacks, strict=True):
        print(f"synthesized {env.name}: {os.path.relpath(path)} ({workflows(len(env.workflows))})")
    for name in written.removed:
        stale = os.path.relpath(args.outdir.resolve() / "stacks" / name)
        print(f"removed {stale}: no {(args.config_dir / f'{name}.toml').as_posix()}")
    return 0


def workflows(count: int) -> str:
    return f"{count} workflow" if count == 1 else f"{count} workflows"


if __name__ == "__main__":
    sys.exit(main())
