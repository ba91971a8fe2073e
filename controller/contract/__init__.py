"""The frontend's API contract against a backend's OpenAPI document: `check` (pure: parse and
compare) and `fetch` (I/O: the document, the ConfigMap, the checker the reconciler calls)."""

from controller.contract.check import (
    CONTRACT_KEY,
    ContractError,
    check,
    field_served,
    parse_document,
    parse_operations,
    path_key,
)
from controller.contract.fetch import (
    ContractChecker,
    check_command,
    configmap_reader,
    contract_operations,
    load_document,
    openapi_url,
    render_problems,
)

__all__ = ["CONTRACT_KEY", "ContractChecker", "ContractError", "check", "check_command", "configmap_reader",
           "contract_operations", "field_served", "load_document", "openapi_url", "parse_document",
           "parse_operations", "path_key", "render_problems"]
