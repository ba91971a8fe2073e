"""`kubectl release status` of a tier of several services: a row per service under the backend's,
with the tags of its stable and canary images and its canary weight."""

from __future__ import annotations

from controller.api.release import BackendStatus, Phase, Release, ReleaseStatus, ServiceBackendStatus
from controller.cli import show
from tests.planner.sim import tier_image, tier_spec


def test_status_shows_each_service_of_a_tier() -> None:
    entries = [ServiceBackendStatus(name="api", stable_image=tier_image("api", "1.0.0"),
                                    canary_image=tier_image("api", "2.0.0"), canary_weight=50),
               ServiceBackendStatus(name="worker", stable_image=tier_image("worker", "1.0.0"),
                                    canary_image=tier_image("worker", "2.0.0"), canary_weight=20)]
    status = ReleaseStatus(phase=Phase.PROGRESSING, observed_generation=1, current_step=1, step_count=2,
                           backend=BackendStatus(stable_version="1.0.0", canary_version="2.0.0", canary_weight=20,
                                                 services=entries))
    release = Release.model_validate({"apiVersion": "delivery.pratiko.ai/v1alpha1", "kind": "Release",
                                      "metadata": {"name": "pratiko", "namespace": "production"},
                                      "spec": tier_spec("2.0.0").to_wire(), "status": status.to_wire()})
    with show.console.capture() as captured:
        show.render_status(release)
    lines = captured.get().splitlines()
    api = next(line for line in lines if line.strip("│ ").startswith("api"))
    worker = next(line for line in lines if line.strip("│ ").startswith("worker"))
    assert "1.0.0" in api and "2.0.0" in api and "50%" in api
    assert "1.0.0" in worker and "20%" in worker
