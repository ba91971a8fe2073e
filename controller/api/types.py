"""Scalar types of the Release API: Kubernetes-style durations and semantic versions.

Each type validates in Python and renders a JSON schema the API server enforces, so bad input is
refused at `kubectl apply` time, not discovered by the controller later.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

import semver
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# semver.org's regular expression, anchored: what the API server checks for every version field.
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


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
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 1h30m or 250ms")
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
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]


def _check_semver(value: Any) -> str:
    if not isinstance(value, str) or not semver.Version.is_valid(value):
        raise ValueError(f"{value!r} is not a semantic version like 1.4.0")
    return value


SemVer = Annotated[
    str,
    BeforeValidator(_check_semver),
    WithJsonSchema({"type": "string", "pattern": SEMVER_PATTERN, "maxLength": 128}),
]


def satisfies(version: str, requirement: str) -> bool:
    """Whether `version` is inside a comma-separated range such as ">=1.4.0,<2.0.0".

    >>> satisfies("1.5.2", ">=1.4.0,<2.0.0")
    True
    >>> satisfies("2.0.0", ">=1.4.0,<2.0.0")
    False
    """
    parsed = semver.Version.parse(version)
    return all(parsed.match(part.strip()) for part in requirement.split(",") if part.strip())


RANGE_PATTERN = r"^\s*(==|!=|>=|<=|>|<)?\s*[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*(\s*,\s*(==|!=|>=|<=|>|<)?\s*[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*)*\s*$"


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
