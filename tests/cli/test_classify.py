"""Changed files -> change class, with the default rules and with rules from a YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.api.release import ChangeClass
from controller.cli.classify import Rule, classify, classify_path, load_rules, parse_rules


@pytest.mark.parametrize(
    "paths, expected",
    [
        ([], "minor"),
        (["README.md"], "minor"),
        (["docs/architecture/overview.png", "CHANGELOG.md"], "minor"),
        (["tests/test_chat.py", "frontend/src/styles/main.scss"], "minor"),
        (["app/core/config.py"], "core"),
        (["app/models/user.py", "README.md"], "core"),
        (["alembic/versions/0042_add_index.py"], "core"),
        (["app/db/migrations/0001_init.py"], "core"),
        (["app/services/new_thing.py"], "core"),  # unmatched source: core by default
        (["app/api/v1/chat.py", "app/core/x.py"], "api"),
        (["openapi.json"], "api"),
        (["app/schemas/chat.py", "docs/api.md"], "api"),
        (["Dockerfile"], "infrastructure"),
        (["terraform/modules/ecs/main.tf", "app/api/x.py"], "infrastructure"),
        (["deploy/vpc.tf"], "infrastructure"),
        (["./infra/network.yaml"], "infrastructure"),
        (["src/terraform_helpers.py"], "core"),
    ],
)
def test_default_rules(paths: list[str], expected: str) -> None:
    assert classify(paths) == ChangeClass(expected)


def test_rule_that_decided_is_reported() -> None:
    cls, rule = classify_path("services/api/routes.py")
    assert cls == ChangeClass.API and rule == Rule("**/api/**", ChangeClass.API)
    assert classify_path("app/whatever.py") == (ChangeClass.CORE, None)


def test_rules_from_yaml_replace_or_extend_the_defaults(tmp_path: Path) -> None:
    f = tmp_path / "classify.yaml"
    f.write_text("infrastructure: ['charts/**']\nminor: ['*.py']\nunmatched: minor\n")
    rs = load_rules(f)
    assert classify(["charts/app/values.yaml"], rs.rules, rs.unmatched) == ChangeClass.INFRASTRUCTURE
    assert classify(["Dockerfile", "app/api/x.py"], rs.rules, rs.unmatched) == ChangeClass.MINOR  # defaults replaced
    extended = parse_rules({"defaults": True, "rules": [{"pattern": "charts/**", "class": "infrastructure"}]})
    assert classify(["app/api/x.py"], extended.rules) == ChangeClass.API
    assert classify(["charts/x"], extended.rules) == ChangeClass.INFRASTRUCTURE


@pytest.mark.parametrize("doc", [["not", "a", "mapping"], {"severe": ["x"]}, {"rules": [{"pattern": "x"}]}])
def test_bad_rules_files_are_refused(doc: object) -> None:
    with pytest.raises(ValueError):
        parse_rules(doc)
