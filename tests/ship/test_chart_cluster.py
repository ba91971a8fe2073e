"""The Helm chart's objects against the real local kube-apiserver: a server-side dry-run of each
rendering (the defaults and the three overlays' values, each with the image `make image` builds), in the release namespace that enforces
the "restricted" Pod Security Standard, and the chart's pod admitted by that enforcement.

The CRDs, the stand-in Prometheus Operator CRDs and the namespaces come from test_cluster.py's
`installed` fixture (the same set-up the kustomize overlays are dry-run in).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from controller.testing.image import IMAGE, REPOSITORY, version
from tests.e2e.conftest import Kubectl
from tests.ship.conftest import OVERLAYS, one
from tests.ship.test_chart import helm, template, values_of  # noqa: F401  (helm: a fixture)
from tests.ship.test_cluster import _pod_from, admin, installed  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e

# The image `make image` builds, set as a user sets theirs (the published one cannot be pulled here).
LOCAL_IMAGE = ("--set", f"image.repository={REPOSITORY}", "--set", f"image.tag={version()}")


@pytest.mark.parametrize("values", ["defaults", *OVERLAYS])
def test_the_rendered_chart_passes_a_server_side_dry_run(admin: Kubectl, installed: None, helm: Path, values: str) -> None:  # noqa: F811
    objs = template(helm, *([] if values == "defaults" else ["-f", values_of(values)]), *LOCAL_IMAGE)
    assert one(objs, "Deployment", "release-controller")["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    out = admin("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(objs), check=False)
    assert out.returncode == 0, f"helm template ({values}) | kubectl apply --dry-run=server:\n{out.stderr}"
    # The namespace warns on workloads whose pods would break the "restricted" profile.
    assert "PodSecurity" not in out.stderr, out.stderr
    applied = [line for line in out.stdout.splitlines() if line.strip()]
    assert len(applied) == len(objs), f"the API server saw {applied}"


def test_restricted_pod_security_admits_the_charts_pod(admin: Kubectl, installed: None, helm: Path) -> None:  # noqa: F811
    """The namespace enforces "restricted": the chart's pod is admitted; a weaker one is not."""
    deployment = one(template(helm, "-f", values_of("production"), *LOCAL_IMAGE), "Deployment", "release-controller")
    pod = _pod_from(deployment, "chart-psa-check")
    ok = admin("create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(pod), check=False)
    assert ok.returncode == 0, ok.stderr
    weaker = json.loads(json.dumps(pod))
    weaker["spec"]["securityContext"]["runAsNonRoot"] = False
    weaker["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot")
    refused = admin("create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(weaker), check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr
