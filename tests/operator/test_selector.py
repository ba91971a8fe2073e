"""controller/operator/selector.py: the equality-based label selectors `run --selector` accepts."""

from __future__ import annotations

import pytest

from controller.operator.selector import parse_selector


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("team=payments", {"team": "payments"}, True),
        ("team=payments", {"team": "search"}, False),
        ("team=payments", {}, False),
        ("team==payments", {"team": "payments"}, True),
        ("team!=payments", {}, True),
        ("team!=payments", {"team": "payments"}, False),
        ("shard", {"shard": "a"}, True),
        ("shard", {}, False),
        ("!legacy", {}, True),
        ("!legacy", {"legacy": ""}, False),
        ("team=payments, example.com/tier!=canary", {"team": "payments", "example.com/tier": "web"}, True),
        ("team=payments,example.com/tier!=canary", {"team": "payments", "example.com/tier": "canary"}, False),
    ],
)
def test_terms(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_selector(selector)(labels) is matches


@pytest.mark.parametrize("bad", ["", "team in (a,b)", "a=b,", "!a=b", "=x", "team=pay ments"])
def test_bad_selectors_are_refused_naming_the_term(bad: str) -> None:
    with pytest.raises(ValueError, match="bad selector term"):
        parse_selector(bad)
