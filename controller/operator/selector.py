"""Label selectors for sharding (`release-controller run --selector`), in Kubernetes' equality form.

`team=payments,tier!=canary,managed,!legacy`: every term must hold. `key=value` (also `key==value`)
needs the label with that value, `key!=value` passes when the label is absent or different, `key`
needs the label, `!key` its absence. Set-based terms (`in`, `notin`) are refused with a clear error
rather than misread. The operator applies the predicate to each Release's labels through a kopf
filter (controller/operator/handlers.py), so one Deployment handles only its shard.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Selector = Callable[[Mapping[str, str]], bool]

# A label key: an optional DNS-subdomain prefix and a name of up to 63 characters.
_KEY = r"(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?"
_TERM = re.compile(rf"^(?P<neg>!)?(?P<key>{_KEY})(?:(?P<op>==|!=|=)(?P<value>{_VALUE}))?$")


def parse_selector(text: str) -> Selector:
    """The predicate of a selector; ValueError (naming the bad term) when it is not one."""
    terms: list[tuple[str, str | None, str]] = []
    for raw in text.split(","):
        term = raw.strip()
        match = _TERM.match(term)
        if not term or not match or (match["neg"] and match["op"]):
            raise ValueError(
                f"bad selector term {term!r} in {text!r}: use key=value, key!=value, key or !key"
            )
        op = "absent" if match["neg"] else {"=": "eq", "==": "eq", "!=": "ne", None: "present"}[match["op"]]
        terms.append((match["key"], match["value"], op))

    def matches(labels: Mapping[str, str]) -> bool:
        for key, value, op in terms:
            have = labels.get(key)
            if op == "eq" and have != value:
                return False
            if op == "ne" and have == value:
                return False
            if op == "present" and have is None:
                return False
            if op == "absent" and have is not None:
                return False
        return True

    return matches
