"""The lazy provider loader (and kernel_launch's other speed-ups): byte-identical output,
the fallbacks, and Node 22 without the end-of-life banner.

The byte-identity test synthesizes the default app twice in subprocesses (eager ~12-15 s,
lazy ~2 s); everything else here is cheap and does not import the provider in-process.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import types
from contextlib import redirect_stderr
from pathlib import Path

import pytest
from node_helpers import NODE, needs_node, run_with_preload

from cdktf_fastsynth import lazy_provider

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_INIT = (
    Path(sys.prefix)
    / "lib"
    / f"python{sys.version_info.major}.{sys.version_info.minor}"
    / "site-packages"
    / "cdktf_cdktf_provider_google"
    / "__init__.py"
)

# Runs main.py's synth, then reports how many provider submodules Python imported, which
# jsii runtime script the kernel runs, and whether the environment was put back.
SYNTH = """
import os, sys
before = dict(os.environ)
sys.path.insert(0, os.getcwd())
import main
rc = main.main(["--outdir", sys.argv[1]])
loaded = sum(m.startswith("cdktf_cdktf_provider_google.") for m in sys.modules)
import jsii
runtime = os.path.basename(jsii.kernel.provider._process._process.args[-1])
print(f"provider-submodules={loaded}", file=sys.stderr)
print(f"kernel-runtime={runtime}", file=sys.stderr)
print(f"environment-restored={dict(os.environ) == before}", file=sys.stderr)
sys.exit(rc)
"""


def synth_subprocess(outdir: Path, *, eager: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"AI_WORKFLOW_EAGER_IMPORTS"}}
    env["JSII_NODE"] = str(NODE)
    if eager:
        env["AI_WORKFLOW_EAGER_IMPORTS"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", SYNTH, str(outdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def synthesized(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    if not NODE.exists():
        pytest.skip("node_modules/.bin/node missing: run `make install` (npm ci)")
    runs = {}
    for name, eager in (("lazy", False), ("eager", True)):
        outdir = tmp_path_factory.mktemp(name) / "cdktf.out"
        runs[name] = (outdir, synth_subprocess(outdir, eager=eager))
    return runs


@needs_node
def test_lazy_and_eager_synth_are_byte_identical(synthesized: dict) -> None:
    (lazy_out, lazy), (eager_out, eager) = synthesized["lazy"], synthesized["eager"]
    lazy_files, eager_files = tree(lazy_out), tree(eager_out)
    names = set(lazy_files)
    assert {"stacks/dev/cdk.tf.json", "stacks/prod/cdk.tf.json"} <= names
    assert any(n.startswith("stacks/dev/assets/") and n.endswith(".zip") for n in names)
    assert lazy_files.keys() == eager_files.keys()
    for name in sorted(names):
        assert lazy_files[name] == eager_files[name], name
    # The comparison means something only if the two runs really loaded differently.
    assert "provider-submodules=" in lazy.stderr and "provider-submodules=" in eager.stderr
    lazy_count = int(lazy.stderr.split("provider-submodules=")[1].split()[0])
    eager_count = int(eager.stderr.split("provider-submodules=")[1].split()[0])
    assert lazy_count < 60 < 1000 < eager_count
    assert "kernel-runtime=direct_kernel.js" in lazy.stderr
    assert "kernel-runtime=jsii-runtime.js" in eager.stderr  # jsii's stock relay
    assert "environment-restored=True" in lazy.stderr


@needs_node
def test_synth_output_has_no_warning_and_no_node_end_of_life_banner(synthesized: dict) -> None:
    for name, (_, result) in synthesized.items():
        output = (result.stdout + result.stderr).lower()
        assert "end-of-life" not in output, name
        assert "end of life" not in output, name
        assert "warning" not in output, name


@needs_node
def test_pinned_node_is_22() -> None:
    version = subprocess.run([str(NODE), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("v22."), version.stdout


# --- split_package_source -----------------------------------------------------------------

HEAD = "import jsii\nimport publication\n\nfrom ._jsii import *\n\npublication.publish()"


def test_split_returns_head_and_submodule_names() -> None:
    source = f"{HEAD}\n\n# Loading modules\nfrom . import pubsub_topic\nfrom . import provider\n"
    split = lazy_provider.split_package_source(source)
    assert split is not None
    head, names = split
    assert head == HEAD + "\n"
    assert names == ["pubsub_topic", "provider"]


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("from . import pubsub_topic\n", id="no publication.publish()"),
        pytest.param(f"{HEAD}\n", id="no submodule imports"),
        pytest.param(f"{HEAD}\nfrom . import a\nx = 1\n", id="other code after the imports"),
        pytest.param(f"{HEAD}\nfrom . import a as b\n", id="aliased import"),
        pytest.param(f"{HEAD}\nfrom .a import B\n", id="from-submodule import"),
        pytest.param(f"{HEAD}\nimport os\n", id="absolute import"),
    ],
)
def test_split_returns_none_on_unexpected_layout(source: str) -> None:
    assert lazy_provider.split_package_source(source) is None


@pytest.mark.skipif(not PROVIDER_INIT.is_file(), reason=f"{PROVIDER_INIT} not installed")
def test_the_installed_provider_has_the_expected_layout() -> None:
    split = lazy_provider.split_package_source(PROVIDER_INIT.read_text(encoding="utf-8"))
    assert split is not None
    head, names = split
    assert len(names) > 1000
    assert {"pubsub_topic", "cloudfunctions2_function", "storage_bucket"} <= set(names)
    assert "from . import" not in head


def test_unexpected_layout_falls_back_with_one_warning_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # find_spec only locates the package; nothing is imported here.
    monkeypatch.setattr(lazy_provider, "split_package_source", lambda source: None)
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        spec = lazy_provider._FINDER.find_spec(lazy_provider.PROVIDER_PACKAGE)
    assert spec is not None
    assert not isinstance(spec.loader, lazy_provider._LazyPackageLoader)  # the eager loader
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: cdktf_cdktf_provider_google/__init__.py")
    assert "eager" in lines[0]


def test_the_finder_ignores_other_packages() -> None:
    assert lazy_provider._FINDER.find_spec("json") is None


def test_eager_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("1", True), ("true", True), ("", False), ("0", False)):
        monkeypatch.setenv(lazy_provider.EAGER_ENV_VAR, value)
        assert lazy_provider.eager_requested() is expected


# --- the Node side (lazy_provider_hook.js) --------------------------------------------------

SUBMODULE_JS = 'globalThis.loaded = (globalThis.loaded || []).concat("{name}"); exports.X = 1;\n'


def fake_provider(tmp_path: Path, index_lines: list[str]) -> Path:
    lib = tmp_path / "node_modules" / "@cdktf" / "provider-google" / "lib"
    for name in ("pubsub-topic", "storage-bucket"):
        (lib / name).mkdir(parents=True)
        (lib / name / "index.js").write_text(SUBMODULE_JS.format(name=name))
    (lib / "index.js").write_text("\n".join(index_lines) + "\n")
    return lib / "index.js"


INDEX = [
    '"use strict";',
    "/**",
    " * Copyright",
    " */",
    'Object.defineProperty(exports, "__esModule", { value: true });',
    "exports.storageBucket = exports.pubsubTopic = void 0;",
    'exports.pubsubTopic = require("./pubsub-topic");',
    'exports.storageBucket = require("./storage-bucket");',
    "// generated by cdktf get",
]
PROBE = (
    "const p = require(process.argv[1]);"
    "const before = (globalThis.loaded || []).length;"
    "const x = p.storageBucket.X;"
    "const keys = Object.keys(p).sort();"
    "console.log(JSON.stringify({before, after: globalThis.loaded, x, keys}));"
)


def run_node_probe(index: Path) -> subprocess.CompletedProcess[str]:
    return run_with_preload(lazy_provider.NODE_HOOK, PROBE, index)


@needs_node
def test_node_hook_defers_submodules_until_first_access(tmp_path: Path) -> None:
    import json

    result = run_node_probe(fake_provider(tmp_path, INDEX))
    report = json.loads(result.stdout)
    assert report == {
        "before": 0,
        "after": ["storage-bucket"],
        "x": 1,
        "keys": ["pubsubTopic", "storageBucket"],
    }
    assert result.stderr == ""


@needs_node
def test_node_hook_leaves_an_unexpected_index_eager_with_one_warning_line(tmp_path: Path) -> None:
    import json

    index = fake_provider(tmp_path, [*INDEX, "exports.extra = 1;"])
    result = run_node_probe(index)
    report = json.loads(result.stdout)
    assert report["before"] == 2  # both submodules loaded eagerly, as without the hook
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: ") and "unexpected layout" in lines[0]


# --- memoized type hints for jsii's generated checks ----------------------------------------


@pytest.mark.skipif(
    lazy_provider.eager_requested(), reason="AI_WORKFLOW_EAGER_IMPORTS is set: not installed"
)
def test_type_hints_are_memoized_only_for_jsii_stubs() -> None:
    import typing

    def _typecheckingstub__abc(value: int) -> None: ...

    def other(value: int) -> None: ...

    stub = types.FunctionType(
        _typecheckingstub__abc.__code__, {"int": int}, "_typecheckingstub__abc"
    )
    stub.__annotations__ = {"value": "int", "return": "None"}
    stub.__module__ = "cdktf_cdktf_provider_google.pubsub_topic"
    assert typing.get_type_hints(stub) == {"value": int, "return": type(None)}
    assert typing.get_type_hints(stub) is typing.get_type_hints(stub)
    assert typing.get_type_hints(other) is not typing.get_type_hints(other)
    _typecheckingstub__abc.__module__ = "somewhere_else"
    hints = typing.get_type_hints(_typecheckingstub__abc)
    assert hints is not typing.get_type_hints(_typecheckingstub__abc)


def test_node_hook_ships_next_to_the_module() -> None:
    # Found through the editable install (-e .); a wheel would need it as package data.
    assert lazy_provider.NODE_HOOK.is_file()
