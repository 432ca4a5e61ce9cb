"""Same inputs, same bytes: across runs and across clones at other paths with new mtimes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tracked_files() -> list[str]:
    out = subprocess.run(
        [
            "git",
            "ls-files",
            "-co",
            "--exclude-standard",
            "constructs",
            "config",
            "function_src",
            "main.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line and (ROOT / line).is_file()]


def all_files(outdir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(outdir).as_posix(): p.read_bytes()
        for p in sorted(outdir.rglob("*"))
        if p.is_file()
    }


def test_second_clone_with_fresh_mtimes_synthesizes_identical_bytes(
    tmp_path: Path, example_outdir: Path
) -> None:
    clone = tmp_path / "elsewhere" / "clone"
    for i, rel in enumerate(tracked_files()):
        target = clone / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / rel).read_bytes())
        os.utime(target, (2_000_000_000 + i, 2_000_000_000 + i))
    env = {**os.environ, "PYTHONPATH": str(clone / "constructs")}
    result = subprocess.run(
        [sys.executable, "main.py", "--outdir", "out"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "synthesized dev" in result.stdout
    clone_files = all_files(clone / "out")
    assert clone_files == all_files(example_outdir)
    text = b"".join(clone_files[name] for name in clone_files if name.endswith(".json"))
    assert str(tmp_path).encode() not in text
    assert str(ROOT).encode() not in text


def test_no_absolute_paths_or_timestamps_in_stacks(synth_outdir: Path) -> None:
    for path in synth_outdir.rglob("*.json"):
        text = path.read_text()
        assert str(ROOT) not in text and "/tmp" not in text and "/home" not in text
        assert '"timestamp"' not in text
