"""How large a Release may be: the API server refuses flags the controller cannot store, and a
Release at the largest size it accepts rolls out, keeps the operator's own bookkeeping small, and
deletes cleanly.

The bounds on spec.featureFlags are a ValidatingAdmissionPolicy (manifests/admission), installed
here as every overlay and the chart install it; the CRD cannot say them (a flag is a boolean or an
object, a union that a structural schema cannot type). These tests hold it to the models
(controller/api/release.py) at the boundary: what one accepts the other does, with the same words.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from controller.api.release import SSM_ADVANCED_LIMIT, FlagRollout, ReleaseSpec, flags_document_size, flags_too_large
from controller.aws.clients import AwsClients
from controller.manifests import validate_body
from controller.testing.aws_world import WorldIds
from controller.testing.kubectl import install_flags_policy
from controller.testing.operator import OperatorProcess
from controller.testing.releases import release_for
from tests.e2e.helpers import Kubectl, Releases, assert_serving_only, condition, flags_published, wait_converged, wait_for

pytestmark = pytest.mark.timeout(420)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "manifests/examples/canary.yaml").read_text())
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ANNOTATION_LIMIT = 256 * 1024  # the API server's limit on all of an object's annotations together
# Characters a flag name may hold that the flags document escapes (json.dumps, ensure_ascii): 2, 6
# and 12 bytes for one character, so a name's size in the document is not its length.
ESCAPED = ['"', "\\", "\n", "\t", "\b", "\f", "\r", "\x00", "\x0b", "\x7f", "é", "中", "\u2028", "\U0001f600"]


def document_size(flags: dict[str, Any]) -> int:
    return flags_document_size({k: v if isinstance(v, bool) else FlagRollout.model_validate(v) for k, v in flags.items()})


def flags_of_size(size: int, rng: random.Random, count: int | None = None, specials: float = 0.3,
                  longest_random: int = 12) -> dict[str, Any]:
    """Flags whose document is exactly `size` bytes: `count` flags (70 to 150 when not given) with
    random values and random names, some characters of which the document escapes, then the names
    padded with ASCII (one byte each) to land on `size`, none over 128 characters."""
    n = count or rng.randint(70, 150)
    names = [f"{i:03d}" + "".join(rng.choice(ESCAPED) if rng.random() < specials else "f"
                                  for _ in range(rng.randint(0, longest_random))) for i in range(n)]
    values = [rng.choice([True, False, {"enabled": True}, {"enabled": False, "rolloutPercent": rng.randint(0, 100)}])
              for _ in range(n)]
    short = size - document_size(dict(zip(names, values, strict=True)))
    assert short >= 0, f"{n} flags are already over {size} bytes"
    for i in range(n):
        add = min(128 - len(names[i]), short)
        names[i] += "p" * add
        short -= add
    assert short == 0, f"{n} flags of 128 characters cannot reach {size} bytes"
    flags = dict(zip(names, values, strict=True))
    assert document_size(flags) == size and len(flags) == n
    return flags


def release_body(namespace: str, name: str, flags: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(EXAMPLE))
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["featureFlags"] = flags
    return body


def model_refusal(flags: dict[str, Any]) -> str | None:
    try:
        ReleaseSpec.model_validate({**EXAMPLE["spec"], "featureFlags": flags})
    except ValidationError as exc:
        return "; ".join(str(e["msg"]) for e in exc.errors())
    return None


# --------------------------------------------------------------------------- refused

def _astral_names() -> dict[str, Any]:
    """200 flags (the schema's maxProperties) of 128 characters (the name limit), each outside the
    BMP: 4 bytes each in the object, 12 in the flags document."""
    return {f"{i:03d}" + "\U0001f600" * 125: True for i in range(200)}


HUNDRED_KB = [
    ("names-within-bounds-but-the-document-too-large", _astral_names, ["spec.featureFlags: the flags document is"]),
    ("names-too-long", lambda: {f"{i:03d}" + "n" * 497: True for i in range(200)},
     ["spec.featureFlags: a feature flag name has at most 128 characters", "has 500"]),
    ("junk-inside-a-value", lambda: {"checkout": {"enabled": True, "notes": "x" * 100_000}},
     ["spec.featureFlags.checkout: a flag is true, false or {enabled: true|false, rolloutPercent: 0..100}"]),
    ("a-string-value", lambda: {"checkout": "x" * 100_000},
     ["spec.featureFlags.checkout: a flag is true, false or {enabled: true|false, rolloutPercent: 0..100}"]),
]


@pytest.mark.parametrize(("case", "flags_of", "expected"), HUNDRED_KB, ids=[c[0] for c in HUNDRED_KB])
def test_a_100_kb_flags_map_is_refused_by_the_api_server_naming_the_field(
    kubectl: Kubectl, namespace: str, case: str, flags_of: Any, expected: list[str]
) -> None:
    flags = flags_of()
    assert len(json.dumps(flags, ensure_ascii=False).encode()) >= 100_000, "the map must be 100 KB in the object"
    proc = kubectl("apply", "-f", "-", stdin=json.dumps(release_body(namespace, "big", flags)), check=False)
    assert proc.returncode != 0, f"{case} was accepted"
    assert "ValidatingAdmissionPolicy 'release-controller-flags'" in proc.stderr, proc.stderr
    for fragment in expected:
        assert fragment in proc.stderr, f"{case}: {fragment!r} not in {proc.stderr[:600]!r}"
    if case.startswith("names-within"):
        size = document_size(flags)
        assert f"spec.featureFlags: {flags_too_large(size)}" in proc.stderr, proc.stderr[:600]
        assert str(SSM_ADVANCED_LIMIT) in proc.stderr
    assert model_refusal(flags) is not None, "the models must refuse what the API server refuses"
    (offline,) = validate_body(release_body(namespace, "big", flags))  # `release-controller validate`

    def which_name_aside(text: str) -> str:  # CEL walks a map in no set order: the long name shown may differ
        return re.sub(r"\(.{20}\.\.\. has ", "(... has ", text)

    assert which_name_aside(offline) in which_name_aside(proc.stderr), (offline[:300], proc.stderr[:600])
    assert kubectl("get", "rel", "-n", namespace, "-o", "name").stdout.strip() == ""


@pytest.mark.parametrize("value", [{"enabled": True, "rolloutPercnt": 10}, {"enabled": True, "rollout_percent": 10}])
def test_a_misspelt_rollout_percent_is_refused_not_read_as_100(kubectl: Kubectl, namespace: str, value: Any) -> None:
    proc = kubectl("apply", "-f", "-", stdin=json.dumps(release_body(namespace, "typo", {"checkout": value})), check=False)
    assert proc.returncode != 0 and "spec.featureFlags.checkout: a flag is true, false or" in proc.stderr, proc.stderr
    assert "Extra inputs are not permitted" in (model_refusal({"checkout": value}) or "")


@pytest.mark.parametrize("seed", range(4))
def test_the_api_server_and_the_models_draw_the_line_at_the_same_byte(kubectl: Kubectl, namespace: str, seed: int) -> None:
    """Flags documents of exactly 8192 bytes are accepted, of 8193 refused, with names full of
    characters the document escapes; the refusal says the model's words and byte count."""
    rng = random.Random(seed)
    for i, size in enumerate((SSM_ADVANCED_LIMIT, SSM_ADVANCED_LIMIT + 1, SSM_ADVANCED_LIMIT, SSM_ADVANCED_LIMIT + 1)):
        flags = flags_of_size(size, rng)
        body = release_body(namespace, f"edge-{seed}-{i}", flags)
        proc = kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(body), check=False)
        refused = model_refusal(flags)
        offline = validate_body(body)  # `release-controller validate`
        if size <= SSM_ADVANCED_LIMIT:
            assert proc.returncode == 0 and refused is None and offline == [], (size, proc.stderr[:600], refused)
        else:
            assert offline == [f"spec.featureFlags: {flags_too_large(size)}"], offline
            assert proc.returncode != 0 and refused is not None
            assert f"spec.featureFlags: {flags_too_large(size)}" in proc.stderr, proc.stderr[:600]
            assert flags_too_large(size) in refused


def test_a_release_stored_before_the_policy_can_still_be_deleted(
    operator: OperatorProcess, releases: Releases, kubectl: Kubectl, namespace: str, world: WorldIds,
    env_vars: dict[str, str],
) -> None:
    """The policy judges only writes of the flags: the operator's finalizer patches on a Release it
    would refuse now (stored before it was installed) pass, so that Release deletes, not wedges."""
    flags = _astral_names()
    body = release_for(world, name="old", namespace=namespace, version="1.0.0", featureFlags=flags)
    kubectl("delete", "validatingadmissionpolicybinding", "release-controller-flags")
    try:
        wait_for("the policy unbound", lambda: kubectl("create", "--dry-run=server", "-f", "-",
                                                       stdin=json.dumps(body), check=False).returncode == 0, 30)
        kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(body))
    finally:
        install_flags_policy(env_vars)
    status = releases.wait(namespace, "old", lambda s: condition(s, "Ready").get("reason") == "InvalidSpec", 60,
                           "InvalidSpec")
    assert flags_too_large(document_size(flags)) in condition(status, "Ready")["message"]
    assert releases.get(namespace, "old")["metadata"].get("finalizers"), "the operator holds a finalizer"
    kubectl("label", "release", "old", "-n", namespace, "team=payments")  # not the flags: allowed
    changed = {"spec": {"featureFlags": {next(iter(flags)): False}}}  # one flag flipped: still too large
    proc = kubectl("patch", "release", "old", "-n", namespace, "--type=merge", "-p", json.dumps(changed), check=False)
    assert proc.returncode != 0 and "the flags document is" in proc.stderr, proc.stderr[:600]
    proc = kubectl("delete", "release", "old", "-n", namespace, "--wait=true", "--timeout=60s", check=False)
    assert proc.returncode == 0, proc.stderr
    assert kubectl("get", "release", "old", "-n", namespace, check=False).returncode != 0


# --------------------------------------------------------------------------- the largest Release

STEPS = 10  # of the backend canary's 50 (maxItems): each step takes about 5 s here, 50 would take 4 minutes
FRONTEND_STEPS = 50  # the frontend canary's maxItems: never run, the frontend version does not change
METRICS = 20  # spec.analysis.metrics maxItems


def largest_spec(world: WorldIds, prometheus: str, rng: random.Random) -> dict[str, Any]:
    """Every bound that is cheap to reach, at (or near) its maximum, and a rollout that can succeed:
    flags at the document limit and the count limit, 10 backend canary steps and 50 frontend ones
    (not run: the frontend stays at 1.0.0), 20 metrics with 63-character
    names and 8192-character queries (a PromQL comment pads them), 50 long invalidation paths."""
    flags = flags_of_size(SSM_ADVANCED_LIMIT, rng, count=200, specials=0.1, longest_random=4)
    assert len(flags) == 200
    steps = [{"setWeight": 100 * (i + 1) // STEPS} for i in range(STEPS)]
    metrics = []
    for i in range(METRICS):
        query = f"vector({i % 2}) # "
        metrics.append({"name": f"m{i:02d}-" + "n" * 59, "prometheus": {"address": prometheus,
                        "query": query + "q" * (8192 - len(query))}, "max": 1})
    frontend = {
        "version": "1.0.0",
        "cloudfront": {"distributionId": world.distribution_id, "originId": world.origin_id, "bucket": world.bucket,
                       "invalidatePaths": [f"/{i:02d}/" + "p" * 252 for i in range(50)]},
        "canary": {"steps": [{"setWeight": min(15, i // 3)} for i in range(FRONTEND_STEPS)]},
    }
    return world.spec(
        version="2.0.0", strategy={"type": "Canary", "canary": {"steps": steps}}, frontend=frontend,
        analysis={"interval": "1s", "minSamples": 1, "metrics": metrics}, featureFlags=flags,
        progressDeadline="10m", rollback={"window": "2s"},  # the previous version goes soon after promotion
    )


def operator_annotations(obj: dict[str, Any]) -> dict[str, str]:
    """The annotations that are not the user's own kubectl's."""
    return {k: v for k, v in (obj["metadata"].get("annotations") or {}).items() if k != LAST_APPLIED}


def test_the_largest_release_rolls_out_keeps_its_bookkeeping_small_and_deletes(
    operator: OperatorProcess, releases: Releases, kubectl: Kubectl, namespace: str, world: WorldIds,
    aws: AwsClients, env_vars: dict[str, str],
) -> None:
    # A small Release first (adopting the running 1.0.0): the operator's bookkeeping at its smallest.
    small = release_for(world, name="app", namespace=namespace, version="1.0.0")
    proc = kubectl("apply", "-f", "-", stdin=json.dumps(small), check=False)
    assert proc.returncode == 0, proc.stderr
    releases.wait_phase(namespace, "app", "Succeeded", 90, generation=1)
    small_obj = releases.get(namespace, "app")

    spec = largest_spec(world, env_vars["PROMETHEUS_URL"], random.Random(11))
    body = {**small, "spec": spec}
    spec_bytes = len(json.dumps(spec, separators=(",", ":")).encode())
    assert spec_bytes > 150_000, spec_bytes  # what the bounds allow, not a token spec
    # What a user types: client-side apply, which keeps the whole spec in an annotation too.
    proc = kubectl("apply", "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode == 0, proc.stderr[:2000]
    status = wait_converged(releases, aws, world, namespace, "app", "2.0.0", generation=2, timeout=180)
    assert_serving_only(aws, world, "2.0.0")
    assert flags_published(aws, namespace, "app") == {
        k: v if isinstance(v, bool) else FlagRollout.model_validate(v).to_wire() for k, v in spec["featureFlags"].items()
    }

    big_obj = releases.get(namespace, "app")
    annotations = big_obj["metadata"].get("annotations") or {}
    assert sum(len(k) + len(v.encode()) for k, v in annotations.items()) < ANNOTATION_LIMIT
    # The operator's own annotations do not grow with the spec: the same keys, the same small size.
    ours_small, ours_big = operator_annotations(small_obj), operator_annotations(big_obj)
    assert ours_big.keys() == ours_small.keys(), (ours_small.keys(), ours_big.keys())
    big_size = len(json.dumps(ours_big))
    assert big_size < 2048 and abs(big_size - len(json.dumps(ours_small))) < 256, (ours_small, ours_big)
    # Nor does the status carry the spec's bulk: no metric query, no invalidation path in it.
    status_text = json.dumps(status)
    assert "q" * 100 not in status_text and "p" * 100 not in status_text
    assert len(status_text.encode()) < 64 * 1024, len(status_text.encode())
    assert "Too long" not in (operator.log_path.read_text() if operator.log_path else "")

    proc = kubectl("delete", "release", "app", "-n", namespace, "--wait=true", "--timeout=60s", check=False)
    assert proc.returncode == 0, proc.stderr
    assert kubectl("get", "release", "app", "-n", namespace, check=False).returncode != 0
    assert_serving_only(aws, world, "2.0.0")  # settled: AWS left as it is
    assert re.search(r"Too long|must have at most", operator.log_path.read_text() if operator.log_path else "") is None
