"""The lazy provider loader (and kernel_launch's other speed-ups): byte-identical output,
the fallbacks, and Node 22 without the end-of-life banner, on the framework in use (cdktf,
or cdktn with `make test-cdktn`).

The byte-identity test synthesizes the default app twice in subprocesses (eager ~4-15 s,
lazy ~1-2 s); everything else here is cheap and does not import the provider in-process.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import types
from contextlib import redirect_stderr
from pathlib import Path

import pytest
from frameworks import on
from node_helpers import NODE, needs_node, run_with_preload

from ai_workflow import compat
from cdktf_fastsynth import lazy_provider

ROOT = Path(__file__).resolve().parent.parent


def provider_dir() -> Path | None:
    """The installed provider package of the framework in use (found, not imported)."""
    spec = importlib.util.find_spec(compat.PROVIDER_PACKAGE)
    return None if spec is None or spec.origin is None else Path(spec.origin).parent


PROVIDER_DIR = provider_dir()
PROVIDER_INIT = None if PROVIDER_DIR is None else PROVIDER_DIR / "__init__.py"

# Runs main.py's synth, then reports how many provider submodules Python imported, which
# jsii runtime script the kernel runs, the kernel's peak memory (with the relay: the relay
# and the kernel it spawned) and whether the environment was put back.
SYNTH = """
import os, sys
before = dict(os.environ)
sys.path.insert(0, os.getcwd())
import main
rc = main.main(["--outdir", sys.argv[1]])
from ai_workflow import compat
loaded = sum(m.startswith(compat.PROVIDER_PACKAGE + ".") for m in sys.modules)
import jsii
process = jsii.kernel.provider._process._process
runtime = os.path.basename(process.args[-1])

def peak_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as children:
            peak += sum(peak_kb(int(child)) for child in children.read().split())
    return peak

print(f"provider-submodules={loaded}", file=sys.stderr)
print(f"kernel-runtime={runtime}", file=sys.stderr)
print(f"kernel-peak-kb={peak_kb(process.pid)}", file=sys.stderr)
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
    # The comparison means something only if the two runs really loaded differently: in
    # Python (cdktf's provider; cdktn's loads submodules on first use either way) and in
    # the kernel (the Node hook: ~180 MB against ~580 MB with cdktf, ~790 MB with cdktn).
    lazy_count, eager_count = (
        reported(lazy, "provider-submodules"),
        reported(eager, "provider-submodules"),
    )
    if on("cdktf"):
        assert lazy_count < 60 < 1000 < eager_count
    else:
        assert lazy_count == eager_count < 60
    assert 2 * reported(lazy, "kernel-peak-kb") < reported(eager, "kernel-peak-kb")
    assert "kernel-runtime=direct_kernel.js" in lazy.stderr
    assert "kernel-runtime=jsii-runtime.js" in eager.stderr  # jsii's stock relay
    assert "environment-restored=True" in lazy.stderr


def reported(result: subprocess.CompletedProcess[str], key: str) -> int:
    assert f"{key}=" in result.stderr, result.stderr
    return int(result.stderr.split(f"{key}=")[1].split()[0])


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


needs_provider = pytest.mark.skipif(
    PROVIDER_INIT is None, reason=f"{compat.PROVIDER_PACKAGE} is not installed"
)


@needs_provider
@pytest.mark.skipif(not on("cdktf"), reason="cdktf's provider layout (cdktn's: the next test)")
def test_the_installed_cdktf_provider_has_the_expected_layout() -> None:
    assert PROVIDER_INIT is not None
    split = lazy_provider.split_package_source(PROVIDER_INIT.read_text(encoding="utf-8"))
    assert split is not None
    head, names = split
    assert len(names) > 1000
    assert {"pubsub_topic", "cloudfunctions2_function", "storage_bucket"} <= set(names)
    assert "from . import" not in head


def eager_submodule_imports(source: str) -> list[str]:
    """`from . import x` statements that run on import: not under `if typing.TYPE_CHECKING`."""
    eager = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "typing.TYPE_CHECKING":
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.level == 1 and inner.module is None:
                eager += [alias.name for alias in inner.names]
    return eager


@needs_provider
@pytest.mark.skipif(not on("cdktn"), reason="cdktn's provider layout (cdktf's: the test above)")
def test_the_installed_cdktn_provider_is_lazy_by_itself() -> None:
    """Why the Python hook leaves cdktn_provider_google alone: its __init__.py imports no
    submodule at run time and resolves them with a module __getattr__ (PEP 562)."""
    assert PROVIDER_INIT is not None
    source = PROVIDER_INIT.read_text(encoding="utf-8")
    assert eager_submodule_imports(source) == []
    tree = ast.parse(source)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "__getattr__" in functions
    assert len(eager_submodule_imports(source.replace("if typing.TYPE_CHECKING:", "if 1:"))) > 1000
    # The finder never intercepts it, so importing it gives no warning.
    assert lazy_provider._FINDER.find_spec(lazy_provider.CDKTN_PROVIDER_PACKAGE) is None


def test_unexpected_layout_falls_back_with_one_warning_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A stand-in for cdktf's provider package, found (never imported) under tmp_path.
    package = tmp_path / lazy_provider.PROVIDER_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("publication.publish()\nfrom . import pubsub_topic\n")
    monkeypatch.setattr(lazy_provider, "split_package_source", lambda source: None)
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        spec = lazy_provider._FINDER.find_spec(lazy_provider.PROVIDER_PACKAGE, [str(tmp_path)])
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


def fake_provider(tmp_path: Path, index_lines: list[str], scope: str = "@cdktf") -> Path:
    lib = tmp_path / "node_modules" / scope / "provider-google" / "lib"
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
# TypeScript's interop helpers, as they open @cdktn/provider-google's lib/index.js.
TS_HELPERS = """\
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
""".splitlines()  # noqa: E501
CDKTN_INDEX = [
    '"use strict";',
    "/**",
    " * Copyright",
    " */",
    *TS_HELPERS,
    'Object.defineProperty(exports, "__esModule", { value: true });',
    "exports.storageBucket = exports.pubsubTopic = void 0;",
    'exports.pubsubTopic = __importStar(require("./pubsub-topic/index"));',
    'exports.storageBucket = __importStar(require("./storage-bucket/index"));',
    "//# sourceMappingURL=data:application/json;base64,eyJ9",
]
LAYOUTS = {"@cdktf": INDEX, "@cdktn": CDKTN_INDEX}
PROBE = (
    "const p = require(process.argv[1]);"
    "const before = (globalThis.loaded || []).length;"
    "const x = p.storageBucket.X;"
    "const same = p.storageBucket === p.storageBucket;"
    "const keys = Object.keys(p).sort();"
    "console.log(JSON.stringify({before, after: globalThis.loaded, x, same, keys}));"
)


def run_node_probe(index: Path) -> subprocess.CompletedProcess[str]:
    return run_with_preload(lazy_provider.NODE_HOOK, PROBE, index)


@needs_node
@pytest.mark.parametrize("scope", LAYOUTS)
def test_node_hook_defers_submodules_until_first_access(tmp_path: Path, scope: str) -> None:
    result = run_node_probe(fake_provider(tmp_path, LAYOUTS[scope], scope))
    report = json.loads(result.stdout)
    assert report == {
        "before": 0,
        "after": ["storage-bucket"],
        "x": 1,
        "same": True,
        "keys": ["pubsubTopic", "storageBucket"],
    }
    assert result.stderr == ""


@needs_node
@pytest.mark.parametrize(
    ("scope", "lines"),
    [
        pytest.param("@cdktf", [*INDEX, "exports.extra = 1;"], id="cdktf-extra-code"),
        pytest.param("@cdktn", [*CDKTN_INDEX, "exports.extra = 1;"], id="cdktn-extra-code"),
        pytest.param("@cdktn", ["var __other = 1;", *CDKTN_INDEX], id="cdktn-unknown-helper"),
        pytest.param(
            "@cdktn",
            [*CDKTN_INDEX[:5], "globalThis.touched = 1;", *CDKTN_INDEX[5:]],
            id="cdktn-code-in-a-helper",
        ),
        pytest.param(
            "@cdktn",
            [line.replace("__importStar(", "__importDefault(") for line in CDKTN_INDEX],
            id="cdktn-other-interop",
        ),
    ],
)
def test_node_hook_leaves_an_unexpected_index_eager_with_one_warning_line(
    tmp_path: Path, scope: str, lines: list[str]
) -> None:
    if any("__importDefault(require" in line for line in lines):
        lines = ["var __importDefault = (m) => m;", *lines]
    index = fake_provider(tmp_path, lines, scope)
    result = run_node_probe(index)
    report = json.loads(result.stdout)
    assert report["before"] == 2  # both submodules loaded eagerly, as without the hook
    lines_out = result.stderr.splitlines()
    assert len(lines_out) == 1, lines_out
    assert lines_out[0].startswith("warning: ") and "unexpected layout" in lines_out[0]


def installed_provider_index() -> str:
    """lib/index.js of the provider assembly that the kernel loads (framework in use)."""
    assert PROVIDER_DIR is not None
    [tarball] = (PROVIDER_DIR / "_jsii").glob("*.jsii.tgz")
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("package/lib/index.js")
        assert member is not None
        return member.read().decode()


# A line of the index that requires one submodule, in either layout.
SUBMODULE_LINE = re.compile(r"^exports\.\w+ = (?:__importStar\()?require\(", re.M)
REAL_INDEX_PROBE = (
    "const {lazyIndex, TARGET} = require(process.argv[1]);"
    "const source = require('fs').readFileSync(0, 'utf8');"
    "const lazy = lazyIndex(source);"
    "const getters = lazy === null ? 0 : lazy.split('\\n')"
    '  .filter((l) => /^Object\\.defineProperty\\(exports, "(?!__esModule)/.test(l)).length;'
    "console.log(JSON.stringify({getters, target: TARGET.test(process.argv[2])}));"
)


@needs_node
@needs_provider
def test_the_installed_provider_index_has_a_known_layout() -> None:
    """The real file, for the framework in use: every submodule line becomes a getter."""
    source = installed_provider_index()
    scope = "@cdktn" if on("cdktn") else "@cdktf"
    where = f"/cache/node_modules/{scope}/provider-google/lib/index.js"
    result = subprocess.run(
        [str(NODE), "-e", REAL_INDEX_PROBE, str(lazy_provider.NODE_HOOK), where],
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    submodules = len(SUBMODULE_LINE.findall(source))
    assert json.loads(result.stdout) == {"getters": submodules, "target": True}
    assert submodules > 1000


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
    stub.__module__ = f"{compat.PROVIDER_PACKAGE}.pubsub_topic"
    assert typing.get_type_hints(stub) == {"value": int, "return": type(None)}
    assert typing.get_type_hints(stub) is typing.get_type_hints(stub)
    assert typing.get_type_hints(other) is not typing.get_type_hints(other)
    _typecheckingstub__abc.__module__ = "somewhere_else"
    hints = typing.get_type_hints(_typecheckingstub__abc)
    assert hints is not typing.get_type_hints(_typecheckingstub__abc)


def test_node_hook_ships_next_to_the_module() -> None:
    # Found through the editable install (-e .); a wheel would need it as package data.
    assert lazy_provider.NODE_HOOK.is_file()
