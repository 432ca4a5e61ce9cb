"""The Terraform Cloud / Enterprise API token for a host, found where Terraform finds it.

In Terraform's order: a `TF_TOKEN_<host>` environment variable (dots as `_`, hyphens as
`__`, any case), then `credentials "<host>"` in the CLI configuration file
(`TF_CLI_CONFIG_FILE`, default `~/.terraformrc`) or in `~/.terraform.d/credentials.tfrc.json`
(what `terraform login` writes). `TERRAFORM_CLOUD_TOKEN` (cdktf's variable) is a source for
this project's API client only: Terraform itself never reads it. Credentials helpers are
not run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CDKTF_TOKEN_VARIABLE = "TERRAFORM_CLOUD_TOKEN"
CREDENTIALS_FILE = Path(".terraform.d") / "credentials.tfrc.json"


@dataclass(frozen=True)
class Token:
    value: str
    source: str
    """Where it came from, for messages: a variable name or a file (never the value)."""


def token_variable(host: str) -> str:
    """The variable Terraform reads for `host`: TF_TOKEN_app_terraform_io."""
    return "TF_TOKEN_" + host.lower().replace("-", "__").replace(".", "_")


def _variable_host(name: str) -> str:
    return name[len("TF_TOKEN_") :].replace("__", "-").replace("_", ".").lower()


def find_token(
    host: str, environ: Mapping[str, str], home: Path, *, cdktf_variable: bool = False
) -> Token | None:
    """The first token for `host`, or None. `cdktf_variable`: also TERRAFORM_CLOUD_TOKEN
    (after TF_TOKEN_*, before the files, as cdktf did)."""
    wanted = host.lower()
    for name in sorted(environ):
        if name.startswith("TF_TOKEN_") and _variable_host(name) == wanted and environ[name]:
            return Token(environ[name], name)
    if cdktf_variable and environ.get(CDKTF_TOKEN_VARIABLE):
        return Token(environ[CDKTF_TOKEN_VARIABLE], CDKTF_TOKEN_VARIABLE)
    cli_config = Path(environ.get("TF_CLI_CONFIG_FILE") or home / ".terraformrc")
    for path, read in ((cli_config, _hcl_tokens), (home / CREDENTIALS_FILE, _json_tokens)):
        try:
            tokens = read(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        token = tokens.get(wanted)
        if token:
            return Token(token, str(path))
    return None


def _json_tokens(text: str) -> dict[str, str]:
    credentials = json.loads(text).get("credentials") or {}
    return {
        host.lower(): str(entry.get("token") or "")
        for host, entry in credentials.items()
        if isinstance(entry, dict)
    }


_HCL_CREDENTIALS = re.compile(
    r'^\s*credentials\s+"([^"]+)"\s*\{[^}]*?\btoken\s*=\s*"([^"]*)"', re.MULTILINE | re.DOTALL
)


def _hcl_tokens(text: str) -> dict[str, str]:
    return {host.lower(): token for host, token in _HCL_CREDENTIALS.findall(text)}
