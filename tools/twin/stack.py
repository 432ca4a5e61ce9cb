"""What a synthesized stack (cdktf.out/stacks/<env>/cdk.tf.json) declares, as the twin needs it.

The twin reads the Terraform JSON, never config/: it creates what Terraform would create. The
JSON's references (`${google_pubsub_topic.x.id}`, `${google_service_account.y.email}`, ...) are
resolved by a small resolver that knows how the Google provider computes those attributes
(`resolve`); a literal attribute (`name`, `location`, ...) is read from the resource itself.
A function's URI (`${google_cloudfunctions2_function.f.service_config[0].uri}`) becomes the
local port the twin serves that function on.

Only what the twin uses is resolved, so a reference it cannot resolve elsewhere in the stack
(an IAM member, a KMS key) costs nothing. One it needs and cannot resolve is a `StackError`
that names the resource, the attribute and the reference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What `data.google_project.<x>.number` resolves to: the Vertex AI stand-in's project number,
# so a job name and a project number agree everywhere in the twin.
PROJECT_NUMBER = "123456789012"

# One `${...}` interpolation: `$${` is a literal `${` in Terraform's template syntax.
_INTERPOLATION = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_REFERENCE = re.compile(
    r"\A(?:(data)\.)?([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)((?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])+)\Z"
)
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")


class StackError(Exception):
    """The stack cannot be run by the twin; the message is one line naming why."""


@dataclass(frozen=True)
class Address:
    """`google_pubsub_topic.ingest_trigger_topic` (or `data.google_project.project`)."""

    type: str
    name: str
    data: bool = False

    def __str__(self) -> str:
        return f"{'data.' if self.data else ''}{self.type}.{self.name}"


def parse_reference(expression: str) -> tuple[Address, list[str | int]]:
    """`google_pubsub_topic.x.id` -> (Address, ["id"]); `...service_config[0].uri` ->
    [..., "service_config", 0, "uri"]. StackError for anything but a plain reference
    (a function call, an operator, a variable)."""
    match = _REFERENCE.match(expression.strip())
    if not match:
        raise StackError(
            f"${{{expression}}}: the twin resolves plain resource references only "
            "(type.name.attribute), not expressions"
        )
    data, rtype, name, rest = match.groups()
    path: list[str | int] = [
        part if part else int(index) for part, index in _PATH_PART.findall(rest)
    ]
    return Address(rtype, name, bool(data)), path


def _first_block(value: Any) -> Any:
    """A nested block as cdktf writes it (an object) or as HCL-JSON may (a list of one)."""
    if isinstance(value, list):
        return value[0] if value else {}
    return value if value is not None else {}


def _seconds(value: str | int | float) -> float:
    """`"604800s"` / `"0.1s"` / 20 -> seconds."""
    text = str(value).strip()
    return float(text[:-1] if text.endswith("s") else text)


@dataclass
class Stack:
    """A loaded cdk.tf.json and the resolver over it."""

    path: Path
    doc: dict[str, Any]
    function_urls: dict[str, str] = field(default_factory=dict)
    """google_cloudfunctions2_function logical name -> the local URL it is served on."""

    @classmethod
    def load(cls, path: Path) -> Stack:
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise StackError(f"{path}: no such file (run `make synth` first)") from None
        except (OSError, ValueError) as exc:
            raise StackError(f"{path}: not a readable Terraform JSON file ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("resource", {}), dict):
            raise StackError(f"{path}: not a Terraform JSON stack (no `resource` object)")
        return cls(path=path, doc=doc)

    # --- the document -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        metadata = self.doc.get("//", {}).get("metadata", {})
        return str(metadata.get("stackName") or self.path.parent.name)

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        found = self.doc.get("resource", {}).get(rtype, {})
        return dict(found) if isinstance(found, dict) else {}

    def body(self, address: Address) -> dict[str, Any]:
        section = self.doc.get("data" if address.data else "resource", {})
        body = section.get(address.type, {}).get(address.name)
        if not isinstance(body, dict):
            raise StackError(f"{address}: referenced, but the stack does not declare it")
        return body

    def _provider(self) -> dict[str, Any]:
        providers = self.doc.get("provider", {}).get("google", [])
        for provider in providers if isinstance(providers, list) else [providers]:
            if isinstance(provider, dict) and "alias" not in provider:
                return provider
        return {}

    @property
    def project(self) -> str:
        """The default provider's project: every resource's project unless it names one."""
        project = self._provider().get("project")
        if not isinstance(project, str) or not project:
            raise StackError(f"{self.path}: the google provider names no project")
        return self.resolve(project, "provider.google.project")

    @property
    def region(self) -> str:
        return self.resolve(str(self._provider().get("region", "")), "provider.google.region")

    def project_of(self, address: Address) -> str:
        body = self.body(address)
        if "project" in body:
            return self.resolve(body["project"], f"{address}.project")
        return self.project

    # --- resolving --------------------------------------------------------------------------

    def resolve(self, value: Any, where: str) -> Any:
        """`value` with every `${reference}` in its strings replaced by the attribute's value
        (recursively through lists and objects). `where` names the attribute in errors."""
        if isinstance(value, dict):
            return {k: self.resolve(v, f"{where}.{k}") for k, v in value.items() if k != "//"}
        if isinstance(value, list):
            return [self.resolve(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        if "%{" in value:
            raise StackError(f"{where}: template directives (%{{...}}) are not supported")

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) is None:
                return "${"
            address, path = parse_reference(match.group(1))
            try:
                return str(self.attribute(address, path))
            except StackError as exc:
                raise StackError(f"{where}: {exc}") from None

        return _INTERPOLATION.sub(substitute, value)

    def attribute(self, address: Address, path: list[str | int], depth: int = 0) -> Any:
        """The value of `address.path`: computed as the provider would, else the literal."""
        if depth > 20:
            raise StackError(f"{address}: references form a cycle")
        steps = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        shown = f"${{{address}{steps}}}"
        computed = _COMPUTED.get(address.type, {})
        key = ".".join(str(p) for p in path)
        if key in computed:
            return computed[key](self, address)
        value: Any = self.body(address)
        for part in path:
            if isinstance(part, int):  # `block[0]`: cdktf writes a one-element block as an object
                value = (
                    value[part]
                    if isinstance(value, list) and part < len(value)
                    else (value if part == 0 and isinstance(value, dict) else None)
                )
            else:
                value = _first_block(value).get(part) if isinstance(value, dict | list) else None
            if value is None:
                raise StackError(
                    f"{shown}: the twin does not know how Terraform computes this attribute "
                    "and the resource does not set it"
                )
        if isinstance(value, str):
            return self.resolve(value, shown)
        return value

    def literal(self, address: Address, key: str) -> str:
        value = self.body(address).get(key)
        if value is None:
            raise StackError(f"{address}.{key}: not set in the stack")
        return str(self.resolve(value, f"{address}.{key}"))

    # --- the resources the twin runs ---------------------------------------------------------

    def topic_path(self, value: str, where: str) -> str:
        """A topic reference as a subscription gives it: a full path or a bare topic name."""
        resolved = str(self.resolve(value, where))
        return resolved if resolved.startswith("projects/") else self._path("topics", resolved)

    def _path(self, collection: str, name: str) -> str:
        return f"projects/{self.project}/{collection}/{name}"

    def topics(self) -> list[Topic]:
        found = []
        for name, body in sorted(self.resources("google_pubsub_topic").items()):
            address = Address("google_pubsub_topic", name)
            found.append(
                Topic(
                    address=str(address),
                    path=str(self.attribute(address, ["id"])),
                    labels=self.resolve(body.get("labels", {}), f"{address}.labels"),
                    message_retention=body.get("message_retention_duration"),
                    kms_key_name=body.get("kms_key_name"),
                )
            )
        return found

    def subscriptions(self) -> list[Subscription]:
        found = []
        for name, body in sorted(self.resources("google_pubsub_subscription").items()):
            address = Address("google_pubsub_subscription", name)
            where = str(address)
            push = _first_block(body.get("push_config"))
            dead_letter = _first_block(body.get("dead_letter_policy"))
            retry = _first_block(body.get("retry_policy"))
            expiration = body.get("expiration_policy")
            found.append(
                Subscription(
                    address=where,
                    path=str(self.attribute(address, ["id"])),
                    topic=self.topic_path(body.get("topic", ""), f"{where}.topic"),
                    ack_deadline_seconds=body.get("ack_deadline_seconds"),
                    message_retention=body.get("message_retention_duration"),
                    retain_acked_messages=body.get("retain_acked_messages"),
                    labels=self.resolve(body.get("labels", {}), f"{where}.labels"),
                    filter=body.get("filter"),
                    enable_message_ordering=body.get("enable_message_ordering"),
                    expiration_ttl=(
                        _first_block(expiration).get("ttl") if expiration is not None else None
                    ),
                    push_endpoint=(
                        str(self.resolve(push["push_endpoint"], f"{where}.push_config"))
                        if push.get("push_endpoint")
                        else None
                    ),
                    oidc_token=self.resolve(
                        _first_block(push.get("oidc_token")) or {}, f"{where}.push_config"
                    ),
                    push_attributes=push.get("attributes") or {},
                    no_wrapper=push.get("no_wrapper"),
                    minimum_backoff=retry.get("minimum_backoff"),
                    maximum_backoff=retry.get("maximum_backoff"),
                    dead_letter_topic=(
                        self.topic_path(
                            dead_letter["dead_letter_topic"], f"{where}.dead_letter_policy"
                        )
                        if dead_letter.get("dead_letter_topic")
                        else None
                    ),
                    max_delivery_attempts=dead_letter.get("max_delivery_attempts"),
                    unsupported=sorted(
                        k for k in ("bigquery_config", "cloud_storage_config") if k in body
                    ),
                )
            )
        return found

    def functions(self) -> list[Function]:
        found = []
        for name, body in sorted(self.resources("google_cloudfunctions2_function").items()):
            address = Address("google_cloudfunctions2_function", name)
            where = str(address)
            service = _first_block(body.get("service_config"))
            build = _first_block(body.get("build_config"))
            env = self.resolve(
                service.get("environment_variables", {}), f"{where}.environment_variables"
            )
            secrets = {}
            for secret in service.get("secret_environment_variables") or []:
                secret = self.resolve(secret, f"{where}.secret_environment_variables")
                secrets[secret["key"]] = (
                    f"twin-secret:{secret.get('project_id', self.project)}/"
                    f"{secret.get('secret')}/{secret.get('version', 'latest')}"
                )
            found.append(
                Function(
                    address=where,
                    logical_name=name,
                    name=self.literal(address, "name"),
                    location=self.literal(address, "location"),
                    entry_point=str(build.get("entry_point") or "handler"),
                    runtime=str(build.get("runtime") or ""),
                    source_zip=self._source_zip(build, where),
                    environment={str(k): str(v) for k, v in env.items()},
                    secrets=secrets,
                    timeout_seconds=int(service.get("timeout_seconds") or 60),
                    threads=max(
                        1,
                        int(service.get("max_instance_count") or 1)
                        * int(service.get("max_instance_request_concurrency") or 1),
                    ),
                )
            )
        return found

    def _source_zip(self, build: dict[str, Any], where: str) -> Path | None:
        """The local zip of the function's source object (a google_storage_bucket_object
        whose `source` is a file next to the stack), if the stack has one."""
        storage = _first_block(_first_block(build.get("source")).get("storage_source"))
        wanted = storage.get("object")
        if not wanted:
            return None
        wanted = self.resolve(wanted, f"{where}.build_config.source")
        for name, body in self.resources("google_storage_bucket_object").items():
            address = Address("google_storage_bucket_object", name)
            if self.literal(address, "name") == wanted and body.get("source"):
                return (self.path.parent / str(body["source"])).resolve()
        return None

    def sinks(self) -> list[Sink]:
        found = []
        for name, body in sorted(self.resources("google_logging_project_sink").items()):
            address = Address("google_logging_project_sink", name)
            where = str(address)
            destination = str(self.resolve(body.get("destination", ""), f"{where}.destination"))
            exclusions = [
                str(self.resolve(e.get("filter", ""), f"{where}.exclusions"))
                for e in body.get("exclusions") or []
                if not e.get("disabled")
            ]
            found.append(
                Sink(
                    address=where,
                    name=self.literal(address, "name"),
                    project=self.project_of(address),
                    destination=destination,
                    filter=str(self.resolve(body.get("filter", ""), f"{where}.filter")),
                    exclusions=exclusions,
                    disabled=bool(body.get("disabled", False)),
                )
            )
        return found


@dataclass(frozen=True)
class Topic:
    address: str
    path: str
    labels: dict[str, str]
    message_retention: str | None
    kms_key_name: str | None

    def rest_body(self) -> dict[str, Any]:
        """The emulator's `PUT /v1/<path>` body (a CMEK key is not emulated: left out)."""
        body: dict[str, Any] = {}
        if self.labels:
            body["labels"] = self.labels
        if self.message_retention:
            body["messageRetentionDuration"] = self.message_retention
        return body


@dataclass(frozen=True)
class Subscription:
    address: str
    path: str
    topic: str
    ack_deadline_seconds: int | None
    message_retention: str | None
    retain_acked_messages: bool | None
    labels: dict[str, str]
    filter: str | None
    enable_message_ordering: bool | None
    expiration_ttl: str | None
    push_endpoint: str | None
    oidc_token: dict[str, str]
    push_attributes: dict[str, str]
    no_wrapper: Any
    minimum_backoff: str | None
    maximum_backoff: str | None
    dead_letter_topic: str | None
    max_delivery_attempts: int | None
    unsupported: list[str]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    def rest_body(self) -> dict[str, Any]:
        """The emulator's `PUT /v1/<path>` body: the subscription as Terraform would create
        it, with its push endpoint as resolved (the twin's local function URL)."""
        body: dict[str, Any] = {"topic": self.topic}
        if self.ack_deadline_seconds is not None:
            body["ackDeadlineSeconds"] = int(self.ack_deadline_seconds)
        if self.message_retention:
            body["messageRetentionDuration"] = self.message_retention
        if self.retain_acked_messages is not None:
            body["retainAckedMessages"] = bool(self.retain_acked_messages)
        if self.labels:
            body["labels"] = self.labels
        if self.filter:
            body["filter"] = self.filter
        if self.enable_message_ordering:
            body["enableMessageOrdering"] = True
        if self.expiration_ttl is not None:
            body["expirationPolicy"] = {"ttl": self.expiration_ttl} if self.expiration_ttl else {}
        if self.push_endpoint:
            push: dict[str, Any] = {"pushEndpoint": self.push_endpoint}
            if self.oidc_token:
                push["oidcToken"] = {
                    "serviceAccountEmail": self.oidc_token.get("service_account_email", ""),
                    "audience": self.oidc_token.get("audience", ""),
                }
            if self.push_attributes:
                push["attributes"] = self.push_attributes
            if self.no_wrapper:
                wrapper = _first_block(self.no_wrapper)
                push["noWrapper"] = {"writeMetadata": bool(wrapper.get("write_metadata"))}
            body["pushConfig"] = push
        if self.minimum_backoff or self.maximum_backoff:
            retry = {}
            if self.minimum_backoff:
                retry["minimumBackoff"] = self.minimum_backoff
            if self.maximum_backoff:
                retry["maximumBackoff"] = self.maximum_backoff
            body["retryPolicy"] = retry
        if self.dead_letter_topic:
            body["deadLetterPolicy"] = {
                "deadLetterTopic": self.dead_letter_topic,
                "maxDeliveryAttempts": int(self.max_delivery_attempts or 5),
            }
        return body

    @property
    def minimum_backoff_seconds(self) -> float:
        return _seconds(self.minimum_backoff or "10s")


@dataclass(frozen=True)
class Function:
    address: str
    logical_name: str
    name: str
    location: str
    entry_point: str
    runtime: str
    source_zip: Path | None
    environment: dict[str, str]
    secrets: dict[str, str]
    timeout_seconds: int
    threads: int

    @property
    def workflow(self) -> str:
        return self.environment.get("WORKFLOW_NAME", self.name)


@dataclass(frozen=True)
class Sink:
    address: str
    name: str
    project: str
    destination: str
    filter: str
    exclusions: list[str]
    disabled: bool

    @property
    def topic(self) -> str | None:
        """The destination topic path, for a `pubsub.googleapis.com/<topic>` sink."""
        prefix = "pubsub.googleapis.com/"
        return self.destination[len(prefix) :] if self.destination.startswith(prefix) else None


# --- attributes the provider computes --------------------------------------------------------

_Computer = Callable[[Stack, Address], Any]


def _id(collection: str) -> _Computer:
    return lambda s, a: f"projects/{s.project_of(a)}/{collection}/{s.literal(a, 'name')}"


def _email(s: Stack, a: Address) -> str:
    return f"{s.literal(a, 'account_id')}@{s.project_of(a)}.iam.gserviceaccount.com"


def _function_uri(s: Stack, a: Address) -> str:
    url = s.function_urls.get(a.name)
    if url is None:
        raise StackError(f"{a}: no local URL assigned (not served by the twin)")
    return url


_COMPUTED: Mapping[str, Mapping[str, _Computer]] = {
    "google_pubsub_topic": {"id": _id("topics")},
    "google_pubsub_subscription": {"id": _id("subscriptions")},
    "google_service_account": {
        "email": _email,
        "id": lambda s, a: f"projects/{s.project_of(a)}/serviceAccounts/{_email(s, a)}",
        "name": lambda s, a: f"projects/{s.project_of(a)}/serviceAccounts/{_email(s, a)}",
        "member": lambda s, a: f"serviceAccount:{_email(s, a)}",
    },
    "google_storage_bucket": {
        "id": lambda s, a: s.literal(a, "name"),
        "url": lambda s, a: f"gs://{s.literal(a, 'name')}",
    },
    "google_storage_bucket_object": {
        "id": lambda s, a: f"{s.literal(a, 'bucket')}-{s.literal(a, 'name')}",
    },
    "google_cloudfunctions2_function": {
        "service_config.0.uri": _function_uri,
        "url": _function_uri,
        "id": lambda s, a: (
            f"projects/{s.project_of(a)}/locations/{s.literal(a, 'location')}/functions/"
            f"{s.literal(a, 'name')}"
        ),
    },
    "google_artifact_registry_repository": {
        "id": lambda s, a: (
            f"projects/{s.project_of(a)}/locations/{s.literal(a, 'location')}/repositories/"
            f"{s.literal(a, 'repository_id')}"
        ),
        "name": lambda s, a: s.literal(a, "repository_id"),
    },
    "google_logging_project_sink": {
        "id": lambda s, a: f"projects/{s.project_of(a)}/sinks/{s.literal(a, 'name')}",
        "writer_identity": lambda s, a: (
            f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-logging.iam.gserviceaccount.com"
        ),
    },
    "google_project": {
        "number": lambda s, a: PROJECT_NUMBER,
        "project_id": lambda s, a: s.project_of(a),
        "id": lambda s, a: f"projects/{s.project_of(a)}",
    },
}
