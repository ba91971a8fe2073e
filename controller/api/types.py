"""Scalar types of the Release API: Kubernetes-style durations and semantic versions.

Each type validates in Python and renders a JSON schema the API server enforces, so bad input is
refused at `kubectl apply` time, not discovered by the controller later.
"""

from __future__ import annotations

import re
from datetime import timedelta
from collections.abc import Callable
from typing import Annotated, Any

import semver
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
DURATION_HINT = "is not a duration like 30s, 5m, 1h30m or 250ms"
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# semver.org's regular expression, anchored: what the API server checks for every version field.
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

# Every string in the spec is bounded, so the largest spec the schema allows is known.
DURATION_MAX_LENGTH = 64


def parse_duration(value: Any) -> timedelta:
    """Parse a Go-style duration string.

    >>> parse_duration("1m30s")
    datetime.timedelta(seconds=90)
    >>> parse_duration("250ms").total_seconds()
    0.25
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration must not be negative")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return timedelta(seconds=value)
    if not isinstance(value, str) or not re.fullmatch(DURATION_PATTERN, value):
        raise ValueError(f"{value!r} {DURATION_HINT}")
    if len(value) > DURATION_MAX_LENGTH:
        raise ValueError(f"a duration is at most {DURATION_MAX_LENGTH} characters")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a timedelta as the shortest Go-style string.

    >>> format_duration(timedelta(seconds=90))
    '1m30s'
    >>> format_duration(timedelta(milliseconds=250))
    '250ms'
    """
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if seconds:
        out += f"{seconds}s"
    if millis:
        out += f"{millis}ms"
    return out


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "maxLength": DURATION_MAX_LENGTH}),
]


def leading_v_hint(value: str) -> str:
    """The hint for a version written as a git tag: the same text the API server's CEL rule gives.

    >>> leading_v_hint("v1.2.3")
    'write 1.2.3, not v1.2.3'
    """
    return f"write {value[1:]}, not {value}"


SEMVER_HINT = "must be a semantic version MAJOR.MINOR.PATCH, like 1.4.0 (a pre-release or build suffix is allowed: 1.4.0-rc.1)"


def _check_semver(value: Any) -> str:
    if isinstance(value, str) and value[:1] in ("v", "V") and semver.Version.is_valid(value[1:]):
        raise ValueError(leading_v_hint(value))
    if not isinstance(value, str) or not semver.Version.is_valid(value):
        raise ValueError(f"{value!r} {SEMVER_HINT}")
    return value


def _cel_regex(pattern: str) -> str:
    """A regular expression as a CEL raw string literal (RE2 syntax; none of ours holds a quote)."""
    assert "'" not in pattern
    return f"r'{pattern}'"


# A regular expression in an OpenAPI `pattern` is refused with the expression itself as the message;
# CEL rules say what to write instead. A git tag (v + a version) gets the leading-v hint and the shape
# rule stays quiet for it, so `v1.2.3` gets the one hint that helps; `v2` is simply not a version.
_TAG_LIKE = "(self.startsWith('v') || self.startsWith('V')) && self.substring(1).matches({})"
SEMVER_SCHEMA: dict[str, Any] = {
    "type": "string",
    "maxLength": 128,
    "x-kubernetes-validations": [
        {"rule": "!(" + _TAG_LIKE.format(_cel_regex(SEMVER_PATTERN)) + ")",
         "messageExpression": "'write ' + self.substring(1) + ', not ' + self"},
        {"rule": f"self.matches({_cel_regex(SEMVER_PATTERN)}) || " + _TAG_LIKE.format(_cel_regex(SEMVER_PATTERN)),
         "messageExpression": f"\"'\" + self + \"' {SEMVER_HINT}\""},
    ],
}

SemVer = Annotated[
    str,
    BeforeValidator(_check_semver),
    WithJsonSchema(SEMVER_SCHEMA),
]


_COMPARATOR = re.compile(
    r"^\s*(==|=|!=|>=|<=|>|<)?\s*([0-9]+)(?:\.([0-9]+)(?:\.([0-9]+)([-+][0-9A-Za-z.+-]*)?)?)?\s*$"
)


def _exact(op: str, bound: semver.Version) -> Callable[[semver.Version], bool]:
    return lambda v: bool(v.match(f"{op}{bound}"))


def _partial(op: str, low: semver.Version, high: semver.Version) -> Callable[[semver.Version], bool]:
    """A comparison with a partial version: every version in [low, high) is the one written."""
    if op == ">=":
        return lambda v: v >= low
    if op == ">":
        return lambda v: v >= high
    if op == "<":
        return lambda v: v < low
    if op == "<=":
        return lambda v: v < high
    if op == "==":
        return lambda v: low <= v < high
    return lambda v: not low <= v < high  # !=


def _comparators(requirement: str) -> list[Callable[[semver.Version], bool]]:
    """A range as one test per comparison, partial versions read as npm reads them.

    A partial version stands for every version it starts: `>=1.4` is `>=1.4.0`, `<2` is `<2.0.0`,
    `<=1.4` is `<1.5.0`, `>1.4` is `>=1.5.0`, a bare or `==` `1.4` is `>=1.4.0,<1.5.0`, and `!=1.4`
    is outside that.

    >>> [t(semver.Version.parse("1.4.9")) for t in _comparators(">=1.4,<=1.4,>1.4,==1,!=1.4")]
    [True, True, False, True, False]
    """
    tests: list[Callable[[semver.Version], bool]] = []
    for part in requirement.split(","):
        if not part.strip():
            continue
        m = _COMPARATOR.match(part)
        if not m:
            raise ValueError(f"{part.strip()!r} is not a comparison like >=1.4.0")
        op, major, minor, patch, suffix = m.groups()
        op = "==" if op in (None, "=") else op
        if patch is not None:
            tests.append(_exact(op, semver.Version.parse(f"{major}.{minor}.{patch}{suffix or ''}")))
        else:
            low = semver.Version(int(major), int(minor or 0), 0)
            high = low.bump_minor() if minor is not None else low.bump_major()  # the first version it does not start
            tests.append(_partial(op, low, high))
    return tests


def satisfies(version: str, requirement: str) -> bool:
    """Whether `version` is inside a comma-separated range such as ">=1.4.0,<2.0.0".

    Partial versions mean what npm makes of them (see `_comparators`).

    >>> satisfies("1.5.2", ">=1.4.0,<2.0.0")
    True
    >>> satisfies("2.0.0", ">=1.4.0,<2.0.0")
    False
    >>> satisfies("1.4.0", ">=1.4"), satisfies("1.3.9", ">=1.4"), satisfies("1.4.7", "<=1.4")
    (True, False, True)
    """
    parsed = semver.Version.parse(version)
    return all(test(parsed) for test in _comparators(requirement))


# A comma-separated list of comparisons; versions may be partial (npm's meaning, see `satisfies`).
RANGE_PATTERN = (
    r"^\s*(==|=|!=|>=|<=|>|<)?\s*[0-9]+(\.[0-9]+(\.[0-9]+[0-9A-Za-z.+-]*)?)?"
    r"(\s*,\s*(==|=|!=|>=|<=|>|<)?\s*[0-9]+(\.[0-9]+(\.[0-9]+[0-9A-Za-z.+-]*)?)?)*\s*$"
)
_RANGE_LEADING_V = r"(^|[,=<>!\s])[vV][0-9]"
RANGE_HINT = ("write comparisons separated by commas, like >=1.4.0,<2.0.0 "
              "(a partial version means what npm says: >=1.4 is >=1.4.0)")
RANGE_V_HINT = "write versions without a leading v: >=1.4.0, not >=v1.4.0"


def check_range(value: Any) -> Any:
    """The Python side of the CEL rules of `RANGE_SCHEMA`: the same refusals, the same words."""
    if value is None:
        return value
    if not isinstance(value, str):
        raise ValueError(RANGE_HINT)
    if re.search(_RANGE_LEADING_V, value):
        raise ValueError(RANGE_V_HINT)
    if not re.fullmatch(RANGE_PATTERN, value):
        raise ValueError(f"{value!r}: {RANGE_HINT}")
    return value


RANGE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "maxLength": 256,
    "x-kubernetes-validations": [
        {"rule": f"!self.matches({_cel_regex(_RANGE_LEADING_V)})", "message": RANGE_V_HINT},
        {"rule": f"self.matches({_cel_regex(_RANGE_LEADING_V)}) || self.matches({_cel_regex(RANGE_PATTERN)})",
         "messageExpression": f"\"'\" + self + \"': {RANGE_HINT}\""},
    ],
}


_TYPE_TAGS = {"bool", "int", "float", "str", "list", "dict"}


def explain(errors: list[Any], prefix: str = "spec") -> str:
    """One line per bad field from pydantic's `errors()`, union alternatives merged.

    A value that fits no member of a union yields one error per member, each with the member's
    name appended to the location; users want one line for the field, saying what it may be.

    >>> explain([{"loc": ("featureFlags", "x", "bool"), "msg": "Input should be a valid boolean"},
    ...          {"loc": ("featureFlags", "x", "FlagRollout"), "msg": "Input should be a valid dictionary"}])
    'spec.featureFlags.x: Input should be a valid boolean, or Input should be a valid dictionary'
    """
    merged: dict[str, list[str]] = {}
    for err in errors:
        loc = [str(p) for p in err["loc"]]
        if len(loc) > 1 and (loc[-1] in _TYPE_TAGS or loc[-1][:1].isupper()):
            loc = loc[:-1]
        where = ".".join([prefix, *loc])
        merged.setdefault(where, [])
        if err["msg"] not in merged[where]:
            merged[where].append(err["msg"])
    return "; ".join(f"{where}: {', or '.join(msgs)}" for where, msgs in merged.items())


VersionRange = Annotated[str, BeforeValidator(check_range), WithJsonSchema(RANGE_SCHEMA)]
