"""Changed files -> change class, from glob rules: what `strategy.changeClass` (and Auto) is fed by.

Pure: paths in, a class out; reading a rules file is the only I/O and happens in `load_rules`.
The CLI (`release-controller classify`) gets the paths from stdin or `git diff --name-only`.

Matching, gitignore-like:
  * a pattern with a `/` matches the whole path from the repository root: `terraform/**`,
    `**/api/**` (`**` spans directories, `*` and `?` stay inside one path segment);
  * a pattern without a `/` matches any single segment: `Dockerfile`, `*.tf`, `migrations`
    (a directory name matches every file below it).
The most severe class any file matches wins (infrastructure > api > core > minor); a file that no
rule matches counts as `unmatched` (core by default: an unknown source file deserves a health-checked
rollout); no files at all is minor.

Rules file (YAML), either form:

    infrastructure: ["terraform/**", "*.tf"]        # class -> patterns
    minor: ["docs", "*.md"]
    unmatched: core                                  # optional
    defaults: true                                   # optional: add to the built-in rules

    rules: [{pattern: "charts/**", class: infrastructure}]
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Iterable, Optional, Sequence

import typer
import yaml

from controller.api.release import ChangeClass

SEVERITY = (ChangeClass.MINOR, ChangeClass.CORE, ChangeClass.API, ChangeClass.INFRASTRUCTURE)


@dataclass(frozen=True)
class Rule:
    pattern: str
    change_class: ChangeClass

    def matches(self, path: str) -> bool:
        regex, normal = _compile(self.pattern), _normalise(path)
        if "/" in self.pattern:
            return regex.match(normal) is not None
        return any(regex.match(part) is not None for part in normal.split("/"))


def _rules(change_class: ChangeClass, *patterns: str) -> tuple[Rule, ...]:
    return tuple(Rule(p, change_class) for p in patterns)


DEFAULT_RULES: tuple[Rule, ...] = (
    *_rules(ChangeClass.INFRASTRUCTURE, "terraform/**", "infra/**", "Dockerfile", "Dockerfile.*", "*.tf",
            "*.tfvars", "docker-compose*.yml", "docker-compose*.yaml"),
    *_rules(ChangeClass.API, "**/api/**", "openapi*", "**/schemas/**", "*.proto"),
    *_rules(ChangeClass.CORE, "**/core/**", "**/models/**", "migrations", "alembic/**", "pyproject.toml",
            "requirements*.txt", "poetry.lock", "uv.lock"),
    *_rules(ChangeClass.MINOR, "docs", "*.md", "*.rst", "*.txt", "tests", "test_*.py", "*_test.py", "*.css",
            "*.scss", "*.less", "**/styles/**", "LICENSE", ".gitignore"),
)


def _normalise(path: str) -> str:
    p = path.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p.lstrip("/")


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    """Glob -> regex. `**/` is zero or more directories, `/**` everything below, `*` one segment.

    >>> bool(_compile("**/api/**").match("app/api/routes.py")), bool(_compile("**/api/**").match("api/x"))
    (True, True)
    >>> bool(_compile("terraform/**").match("src/terraform/x.tf"))
    False
    """
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out, i = out + "(?:/.*)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def classify_path(
    path: str, rules: Sequence[Rule] | None = None, unmatched: ChangeClass = ChangeClass.CORE
) -> tuple[ChangeClass, Rule | None]:
    """The class of one file and the rule that decided it (the most severe match)."""
    matched = [r for r in (DEFAULT_RULES if rules is None else rules) if r.matches(path)]
    if not matched:
        return unmatched, None
    best = max(matched, key=lambda r: SEVERITY.index(r.change_class))
    return best.change_class, best


def classify(
    paths: Iterable[str], rules: Sequence[Rule] | None = None, unmatched: ChangeClass = ChangeClass.CORE
) -> ChangeClass:
    """The change class of a set of changed files: the most severe of theirs; none at all is minor.

    >>> classify(["README.md", "docs/guide.md"])
    <ChangeClass.MINOR: 'minor'>
    >>> classify(["README.md", "app/api/routes.py"])
    <ChangeClass.API: 'api'>
    >>> classify(["app/core/db.py", "terraform/ecs.tf"])
    <ChangeClass.INFRASTRUCTURE: 'infrastructure'>
    >>> classify([])
    <ChangeClass.MINOR: 'minor'>
    """
    worst = ChangeClass.MINOR
    for path in paths:
        if not path.strip():
            continue
        found, _ = classify_path(path, rules, unmatched)
        if SEVERITY.index(found) > SEVERITY.index(worst):
            worst = found
            if worst == SEVERITY[-1]:
                break
    return worst


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    unmatched: ChangeClass = ChangeClass.CORE


def parse_rules(document: Any) -> RuleSet:
    """Rules from a parsed YAML document (see the module docstring for the forms)."""
    if not isinstance(document, dict):
        raise ValueError("a classify rules file is a mapping: class -> patterns, or rules: [...]")
    rules: list[Rule] = list(DEFAULT_RULES) if document.get("defaults") else []
    for key, value in document.items():
        if key in ("defaults", "unmatched"):
            continue
        if key == "rules":
            for item in value or []:
                if not isinstance(item, dict) or "pattern" not in item or "class" not in item:
                    raise ValueError(f"a rule needs pattern and class: {item!r}")
                rules.append(Rule(str(item["pattern"]), ChangeClass(item["class"])))
            continue
        try:
            change_class = ChangeClass(key)
        except ValueError:
            raise ValueError(f"unknown change class {key!r}: one of {', '.join(c.value for c in ChangeClass)}") from None
        patterns = [value] if isinstance(value, str) else list(value or [])
        rules.extend(Rule(str(p), change_class) for p in patterns)
    unmatched = ChangeClass(document.get("unmatched", ChangeClass.CORE.value))
    return RuleSet(tuple(rules), unmatched)


def load_rules(path: str | Path) -> RuleSet:
    """Read a rules YAML file."""
    return parse_rules(yaml.safe_load(Path(path).read_text()))


def classify_command(
    files: Annotated[Optional[list[str]], typer.Argument(help="Changed files (default: read stdin).")] = None,
    base: Annotated[Optional[str], typer.Option(help="git ref to diff from")] = None,
    head: Annotated[str, typer.Option(help="git ref to diff to")] = "HEAD",
    rules: Annotated[Optional[Path], typer.Option(help="YAML file of glob rules")] = None,
) -> None:
    """Print the change class (infrastructure, api, core, minor) of a set of changed files."""
    if base:
        out = subprocess.run(["git", "diff", "--name-only", f"{base}...{head}"], check=True,
                             capture_output=True, text=True).stdout
        paths = [line for line in out.splitlines() if line.strip()]
    elif files:
        paths = list(files)
    else:
        paths = [line.strip() for line in sys.stdin if line.strip()]
    if rules:
        ruleset = load_rules(rules)
        print(classify(paths, ruleset.rules, ruleset.unmatched).value)
    else:
        print(classify(paths).value)

