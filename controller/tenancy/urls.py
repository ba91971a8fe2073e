"""URL globs, matched part by part so that a `*` cannot carry a URL to another host.

A plain `fnmatch` over whole URLs lets `https://*.example.com/*` match
`https://evil.test/.example.com/x` (the first `*` swallows the host and a `/`). Here a URL and a
glob are split first (scheme, host, port, path with query); the scheme and port must be equal, the
host matches the host glob, the path the path glob. A URL with userinfo (`user:pass@host`) never
matches: the operator has no reason to send credentials in a URL, and `host@other` is the classic
disguise. Pure: no I/O.

    >>> url_matches("https://hooks.slack.com/*", "https://hooks.slack.com/services/T0/B0")
    True
    >>> url_matches("https://*.example.com/*", "https://evil.test/.example.com/x")
    False
    >>> url_matches("https://prometheus.monitoring.svc:9090/*", "https://prometheus.monitoring.svc:9090@evil.test/")
    False
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418}
_SCP = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")


@dataclass(frozen=True)
class Parts:
    scheme: str
    host: str
    port: int | None
    path: str  # with the query, if any (`/api/v1/query?x=1`), never empty: "/" at least


def split(url: str) -> Parts | None:
    """The parts of a URL (an scp-like Git address `git@host:path` as `ssh://host/path`); None when
    it is not an absolute URL with a host, or carries userinfo other than an ssh user."""
    scp = _SCP.match(url)
    if scp is not None:
        return Parts("ssh", scp["host"].lower(), DEFAULT_PORTS["ssh"], "/" + scp["path"])
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError:
        return None
    scheme = parsed.scheme.lower()
    if not scheme or not parsed.hostname:
        return None
    if parsed.password is not None or (parsed.username is not None and scheme != "ssh"):
        return None
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    return Parts(scheme, parsed.hostname.lower(), port if port is not None else DEFAULT_PORTS.get(scheme), path)


def _glob_parts(glob: str) -> Parts | None:
    """A glob split like a URL; `*` in the host or path is kept (urlsplit leaves it alone), a port
    may be `*`."""
    port_any = re.match(r"^([a-z+]+://[^/]*):\*(/.*)?$", glob)
    if port_any is not None:
        parts = split(port_any[1] + (port_any[2] or ""))
        return None if parts is None else Parts(parts.scheme, parts.host, -1, parts.path)
    return split(glob)


def url_matches(glob: str, url: str) -> bool:
    """Does `url` fall under the glob (see the module docstring)?

    >>> url_matches("https://git.example.com/team-a/*", "https://git.example.com/team-a/releases.git")
    True
    >>> url_matches("ssh://git.example.com/team-a/*", "git@git.example.com:team-a/releases.git")
    True
    >>> url_matches("http://api-*.internal/*", "http://api-2.0.0.internal:8080/openapi.json")
    False
    >>> url_matches("http://api-*.internal:*/*", "http://api-2.0.0.internal:8080/openapi.json")
    True
    """
    target, pattern = split(url), _glob_parts(glob)
    if target is None or pattern is None or target.scheme != pattern.scheme:
        return False
    if pattern.port != -1 and pattern.port != target.port:
        return False
    return fnmatch.fnmatchcase(target.host, pattern.host) and fnmatch.fnmatchcase(target.path, pattern.path)


def any_matches(globs: list[str] | tuple[str, ...], url: str) -> bool:
    return any(url_matches(g, url) for g in globs)
