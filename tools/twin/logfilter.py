"""A log sink's filter, evaluated against a LogEntry the way Cloud Logging would.

The subset of the Logging query language that sink filters use:

    logName="projects/p/logs/x" AND resource.type="t"
    resource.labels.pipeline_job_id=~"^ingest-[0-9]+$"
    jsonPayload.state=("PIPELINE_STATE_SUCCEEDED" OR "PIPELINE_STATE_FAILED")
    NOT severity>=ERROR    -labels.x:"y"    labels.k:*    (a OR b) c

Operators `=`, `!=`, `:` (has: substring, case-insensitive; `:*` exists), `=~`/`!~` (RE2,
unanchored, evaluated with Python's `re`, which reads every pattern the contract writes), `<`,
`<=`, `>`, `>=` (numbers, severities, else text). Boolean `NOT`/`-`, `OR`, `AND` (also
implicit between terms), with Logging's precedence: NOT, then OR, then AND, so `a OR b c`
means `(a OR b) AND c`. A value may be a parenthesized group of values joined by OR/AND.
Anything else (functions such as `sample()`, bare full-text terms) is a `FilterError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

SEVERITIES = [
    "DEFAULT",
    "DEBUG",
    "INFO",
    "NOTICE",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "ALERT",
    "EMERGENCY",
]
_COMPARATORS = ("=~", "!~", "!=", ">=", "<=", "=", ":", ">", "<")
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>=~|!~|!=|>=|<=|=|:|>|<)'
    r'|(?P<paren>[()])|(?P<word>[^\s()"=!<>:]+))'
)


class FilterError(ValueError):
    """The filter uses something this evaluator does not support, or is malformed."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"cannot read the filter at {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(token: str) -> str:
    if token.startswith('"'):
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)),
                      token[1:-1])  # fmt: skip
    return token


def _field(entry: dict[str, Any], path: list[str]) -> Any:
    value: Any = entry
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _order(field: list[str], value: str) -> Any:
    if field == ["severity"] and value.upper() in SEVERITIES:
        return (0, SEVERITIES.index(value.upper()))
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _compare(field: list[str], op: str, expected: str) -> Predicate:
    if op == ":" and expected == "*":
        return lambda entry: _field(entry, field) is not None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(expected)
        except re.error as exc:
            raise FilterError(f"bad regular expression {expected!r}: {exc}") from None

    def test(entry: dict[str, Any]) -> bool:
        value = _field(entry, field)
        if value is None:
            return op in ("!=", "!~")
        values = value if isinstance(value, list) else [value]
        texts = [_as_text(v) for v in values if not isinstance(v, dict)]
        if isinstance(value, dict):  # `labels:"x"` on an object: any of its values
            texts = [_as_text(v) for v in value.values()]
        if op == "=":
            return any(text == expected for text in texts)
        if op == "!=":
            return all(text != expected for text in texts)
        if op == ":":
            return any(expected.casefold() in text.casefold() for text in texts)
        if op == "=~":
            return any(pattern.search(text) for text in texts)
        if op == "!~":
            return not any(pattern.search(text) for text in texts)
        left, right = [_order(field, t) for t in texts], _order(field, expected)
        checks = {
            ">": lambda a: a > right,
            "<": lambda a: a < right,
            ">=": lambda a: a >= right,
            "<=": lambda a: a <= right,
        }
        return any(checks[op](a) for a in left if a[0] == right[0])

    return test


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        self.position += 1
        return token

    def expect(self, kind: str, value: str) -> None:
        token = self.take()
        if token != (kind, value):
            raise FilterError(f"expected {value!r}, found {token[1]!r}")

    def parse(self) -> Predicate:
        if self.peek() is None:
            return lambda entry: True  # an empty filter matches every entry
        predicate = self.conjunction(self.term)
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return predicate

    # AND (explicit or implicit) over OR groups: Logging's precedence.
    def conjunction(self, item: Callable[[], Predicate]) -> Predicate:
        parts = [self.disjunction(item)]
        while True:
            token = self.peek()
            if token is None or token == ("paren", ")"):
                break
            if token == ("word", "AND"):
                self.take()
            parts.append(self.disjunction(item))
        return parts[0] if len(parts) == 1 else (lambda e: all(p(e) for p in parts))

    def disjunction(self, item: Callable[[], Predicate]) -> Predicate:
        parts = [item()]
        while self.peek() == ("word", "OR"):
            self.take()
            parts.append(item())
        return parts[0] if len(parts) == 1 else (lambda e: any(p(e) for p in parts))

    def term(self) -> Predicate:
        kind, value = self.take()
        if (kind, value) == ("word", "NOT"):
            inner = self.term()
            return lambda e: not inner(e)
        if kind == "word" and value.startswith("-") and len(value) > 1:
            self.tokens[self.position - 1] = ("word", value[1:])
            self.position -= 1
            inner = self.term()
            return lambda e: not inner(e)
        if (kind, value) == ("paren", "("):
            inner = self.conjunction(self.term)
            self.expect("paren", ")")
            return inner
        if kind == "word" and self.peek() is not None and self.peek()[0] == "op":  # type: ignore[index]
            field = self.field_path(value)
            _, op = self.take()
            return self.value_group(field, op)
        raise FilterError(
            f"{value!r}: the twin evaluates comparisons (field OP value) only, not full-text "
            "terms or functions"
        )

    def field_path(self, text: str) -> list[str]:
        if not re.fullmatch(r"[A-Za-z_@][\w@/-]*(?:\.[A-Za-z_@][\w@/-]*)*", text):
            raise FilterError(f"{text!r}: not a field path the twin can read")
        return text.split(".")

    def value_group(self, field: list[str], op: str) -> Predicate:
        """`value` or `(value OR value ...)`: each value compared with `op`."""
        if self.peek() == ("paren", "("):
            self.take()

            def item() -> Predicate:
                kind, value = self.take()
                if (kind, value) == ("word", "NOT"):
                    inner = item()
                    return lambda e: not inner(e)
                if kind not in ("string", "word"):
                    raise FilterError(f"expected a value, found {value!r}")
                return _compare(field, op, _unquote(value))

            predicate = self.conjunction(item)
            self.expect("paren", ")")
            return predicate
        kind, value = self.take()
        if kind not in ("string", "word"):
            raise FilterError(f"expected a value after {op!r}, found {value!r}")
        return _compare(field, op, _unquote(value))


def compile_filter(text: str) -> Predicate:
    """The filter as a predicate over a LogEntry (a dict). FilterError if it cannot be read."""
    return _Parser(text).parse()


def matches(text: str, entry: dict[str, Any]) -> bool:
    return compile_filter(text)(entry)
