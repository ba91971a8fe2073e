"""Release manifests as files, offline: `edit` (find a Release in a YAML file and change values in
place, byte-for-byte elsewhere; `set-version`, the GitOps write-back) and `validate` (the CRD's
schema and CEL rules as the API server would apply them; `validate`)."""

from controller.manifests.edit import (
    SET_VERSION_PATHS,
    ManifestError,
    ReleaseDoc,
    find_release,
    release_docs,
    set_values,
    set_version,
)
from controller.manifests.validate import CEL_CHECKS, release_bodies, cel_messages, flags_policy, spec_schema, validate_body, validate_text

__all__ = ["CEL_CHECKS", "SET_VERSION_PATHS", "ManifestError", "ReleaseDoc", "cel_messages", "find_release",
           "flags_policy", "release_bodies", "release_docs", "set_values", "set_version", "spec_schema",
           "validate_body", "validate_text"]
