"""Feature flags effector: one JSON SSM parameter per Release, and the frontend's flags.json.

Order: the S3 object (and its CloudFront invalidation) first, the SSM parameter last. The
parameter is what the observer reads, so until it is written the planner keeps asking, and a pass
that died after the S3 write finishes the job on the next pass. The invalidation's CallerReference
is derived from the document and the parameter's version before this publish, both unchanged until
the parameter is written, so the retry finds the invalidation already made instead of making a
second one; publishing the same flags again later (after other flags) gets a new reference.

This module must not decide which flags to publish: the planner does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from controller.aws.clients import AwsClients
from controller.aws.cloudfront import caller_reference, invalidate
from controller.aws.errors import AwsEffectError, AwsFailure, is_not_found
from controller.aws.shapes import parse_flags
from controller.planner.actions import PublishFlags

CACHE_CONTROL = "max-age=30, must-revalidate"  # short: a flag flip reaches browsers within a minute
STANDARD_TIER_LIMIT = 4096  # bytes; larger values need the Advanced tier


def document(flags: Mapping[str, Any]) -> str:
    """The exact bytes published: sorted keys, no spaces, so equal flags are equal documents."""
    return json.dumps(dict(flags), sort_keys=True, separators=(",", ":"))


def _parameter(ssm: Any, name: str) -> tuple[Mapping[str, Any] | None, int]:
    try:
        p = ssm.get_parameter(Name=name)["Parameter"]
    except AwsFailure as exc:
        if is_not_found(exc, "ParameterNotFound"):
            return None, 0
        raise
    return parse_flags(p.get("Value")), int(p.get("Version", 0))


def _object_etag(s3: Any, bucket: str, key: str) -> str | None:
    try:
        return str(s3.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')
    except AwsFailure as exc:
        code = (getattr(exc, "response", {}) or {}).get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        if code in ("NoSuchBucket",):
            raise AwsEffectError("BucketNotFound", f"S3 bucket {bucket} does not exist", retryable=False) from exc
        raise


def publish_flags(clients: AwsClients, a: PublishFlags) -> str | None:
    body = document(a.flags)
    published, version = _parameter(clients.ssm, a.parameter_name)
    done: list[str] = []
    if a.bucket:
        md5 = hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
        current = _object_etag(clients.s3, a.bucket, a.key)
        object_changed = current != md5
        if object_changed:
            try:
                clients.s3.put_object(
                    Bucket=a.bucket, Key=a.key, Body=body.encode(), ContentType="application/json",
                    CacheControl=CACHE_CONTROL,
                )
            except AwsFailure as exc:
                if is_not_found(exc, "NoSuchBucket"):
                    message = f"S3 bucket {a.bucket} does not exist"
                    raise AwsEffectError("BucketNotFound", message, retryable=False) from exc
                raise
            done.append(f"s3://{a.bucket}/{a.key}")
        if a.distribution_id and (object_changed or published != dict(a.flags)):
            reference = caller_reference("flags", a.distribution_id, a.key, md5, str(version))
            paths = [f"/{a.key}"]
            if invalidate(clients.cloudfront, a.distribution_id, paths, reference, check_first=not object_changed):
                done.append(f"invalidated /{a.key} on {a.distribution_id}")
    if published != dict(a.flags):
        request: dict[str, Any] = {"Name": a.parameter_name, "Value": body, "Type": "String", "Overwrite": True}
        if len(body.encode()) > STANDARD_TIER_LIMIT:
            request["Tier"] = "Advanced"
        clients.ssm.put_parameter(**request)
        done.append(f"ssm {a.parameter_name}")
    return ("published flags: " + ", ".join(done)) if done else None
