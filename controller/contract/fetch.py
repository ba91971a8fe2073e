"""The contract check's I/O: fetching the backend's OpenAPI document (http/https), reading the
contract's ConfigMap, and the `ContractChecker` the reconciler calls. The pure check is in
`controller.contract.check`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError

from controller.api.release import ApiOperation, ReleaseSpec
from controller.planner.decision import ContractCheck

log = logging.getLogger(__name__)

from controller.contract.check import CONTRACT_KEY, ContractError, check, parse_document, parse_operations

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- I/O


def openapi_url(template: str, version: str) -> str:
    """`apiContract.openapiUrl` for one backend version (`{{version}}` or `{version}` substituted).

    >>> openapi_url("http://api-{{version}}.internal/openapi.json", "2.0.0")
    'http://api-2.0.0.internal/openapi.json'
    """
    return template.replace("{{version}}", version).replace("{version}", version)


def load_document(source: str, http: httpx.Client | None = None) -> dict[str, Any]:
    """An OpenAPI document from an http(s) URL or a file path."""
    if source.startswith(("http://", "https://")):
        client = http or httpx.Client(timeout=5.0)
        try:
            resp = client.get(source, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ContractError(f"GET {source}: {type(exc).__name__}: {exc}") from exc
        finally:
            if http is None:
                client.close()
        if resp.status_code != 200:
            raise ContractError(f"GET {source}: HTTP {resp.status_code}")
        return parse_document(resp.content)
    try:
        return parse_document(Path(source).read_bytes())
    except OSError as exc:
        raise ContractError(f"cannot read {source}: {exc}") from exc


ConfigMapReader = Callable[[str, str], Mapping[str, str]]  # (namespace, name) -> data


def configmap_reader(api_client: Any) -> ConfigMapReader:
    """A ConfigMap reader over the Kubernetes client (the one import of it here is lazy)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)

    def read(namespace: str, name: str) -> Mapping[str, str]:
        try:
            return core.read_namespaced_config_map(name, namespace).data or {}
        except client.ApiException as exc:
            raise ContractError(f"ConfigMap {namespace}/{name}: HTTP {exc.status} {exc.reason}") from exc

    return read


def contract_operations(spec: ReleaseSpec, namespace: str, configmaps: ConfigMapReader | None) -> list[ApiOperation]:
    """The frontend's operations: inline ones, then those of its ConfigMap's `contract.yaml`."""
    fe = spec.frontend
    if fe is None or fe.api_contract is None:
        return []
    ops = list(fe.api_contract.operations)
    if fe.api_contract.config_map:
        if configmaps is None:
            raise ContractError("the contract is in a ConfigMap, and no Kubernetes client was given")
        data = configmaps(namespace, fe.api_contract.config_map)
        if CONTRACT_KEY not in data:
            raise ContractError(f"ConfigMap {namespace}/{fe.api_contract.config_map} has no key {CONTRACT_KEY}")
        try:
            ops += parse_operations(yaml.safe_load(data[CONTRACT_KEY]))
        except yaml.YAMLError as exc:
            raise ContractError(f"ConfigMap {fe.api_contract.config_map} {CONTRACT_KEY}: {exc}") from exc
    return ops


@dataclass
class ContractChecker:
    """The reconciler's seam: the contract gate's result for one backend version.

    Documents are cached per URL for `ttl` seconds (a version's API does not change under it, and
    a held frontend is re-checked every pass); failures are not cached.
    """

    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=5.0))
    configmaps: ConfigMapReader | None = None
    ttl: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    fetches: int = 0

    def __call__(self, namespace: str, spec: ReleaseSpec, backend_version: str) -> ContractCheck:
        fe = spec.frontend
        try:
            if fe is None or fe.api_contract is None:
                return ContractCheck(backend_version)
            if not fe.api_contract.openapi_url:
                raise ContractError("frontend.apiContract.openapiUrl is not set: nowhere to read the backend's API")
            ops = contract_operations(spec, namespace, self.configmaps)
            doc = self.document(openapi_url(fe.api_contract.openapi_url, backend_version))
            return ContractCheck(backend_version, tuple(check(doc, ops)))
        except ContractError as exc:
            return ContractCheck(backend_version, error=str(exc))

    def document(self, url: str) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        doc = load_document(url, self.http)
        self.fetches += 1
        with self._lock:
            self._cache[url] = (now, doc)
        return doc


def check_command(openapi: str | None, contract: str | None, release: str | None,
                  http: httpx.Client | None = None) -> tuple[list[str], str]:
    """`release-controller contract check`: (problems, the document's source). Raises ContractError
    when the inputs cannot be read."""
    ops: list[ApiOperation] = []
    spec: ReleaseSpec | None = None
    if release:
        try:
            body = yaml.safe_load(Path(release).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ContractError(f"cannot read {release}: {exc}") from exc
        try:
            spec = ReleaseSpec.model_validate((body or {}).get("spec", body))
        except ValidationError as exc:
            raise ContractError(f"{release}: not a Release: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from exc
        if spec.frontend is None or spec.frontend.api_contract is None:
            raise ContractError(f"{release}: the Release has no frontend.apiContract")
        ops += list(spec.frontend.api_contract.operations)
        if spec.frontend.api_contract.config_map and not contract:
            raise ContractError(
                f"{release}: operations are in ConfigMap {spec.frontend.api_contract.config_map}: "
                "pass its contract.yaml with --contract"
            )
    if contract:
        try:
            ops += parse_operations(yaml.safe_load(Path(contract).read_text()))
        except (OSError, yaml.YAMLError) as exc:
            raise ContractError(f"cannot read {contract}: {exc}") from exc
    if not release and not contract:
        raise ContractError("give --contract FILE or --release FILE")
    source = openapi
    if source is None:
        if spec is None or spec.frontend is None or spec.frontend.api_contract is None or not spec.frontend.api_contract.openapi_url:
            raise ContractError("give --openapi URL|FILE (or a Release with apiContract.openapiUrl)")
        source = openapi_url(spec.frontend.api_contract.openapi_url, spec.backend.version)
    return check(load_document(source, http), ops), source


def render_problems(problems: Sequence[str], source: str) -> str:
    if not problems:
        return f"ok: {source} serves every operation and field of the contract"
    return "\n".join([f"{len(problems)} problem(s) against {source}:", *(f"  - {p}" for p in problems)])
