"""The native mode's reads for `Observer`: each service's current ECS service deployment (batched)
and the images its target and source revisions run, each revision read once. Must not change AWS."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controller.aws.clients import AwsClients
from controller.aws.errors import AwsFailure, observation_error
from controller.aws.shapes import chunks, container_image, parse_deployment
from controller.aws.taskdefs import TaskDefinitionCache
from controller.planner.world import NativeDeployment, ObservationError

NATIVE_STRATEGIES = frozenset({"BLUE_GREEN", "CANARY", "LINEAR"})  # ECS deploys these itself, with stages
SERVICE_DEPLOYMENTS_PER_CALL = 20  # DescribeServiceDeployments' limit ("a maximum of 20 ARNs", API reference)
SERVICE_REVISIONS_PER_CALL = 20  # DescribeServiceRevisions' limit (the same)


def service_deployments(
    clients: AwsClients, services: Iterable[Mapping[str, Any] | ObservationError]
) -> dict[str, Mapping[str, Any] | ObservationError]:
    """The current service deployments of the services ECS deploys natively, in batched calls
    (DescribeServiceDeployments takes up to 20 ARNs): a settled fleet adds one call per 20."""
    arns = sorted({str(raw["currentServiceDeployment"]) for raw in services
                   if not isinstance(raw, ObservationError) and raw.get("currentServiceDeployment")
                   and (raw.get("deploymentConfiguration") or {}).get("strategy") in NATIVE_STRATEGIES})
    out: dict[str, Mapping[str, Any] | ObservationError] = {}
    for chunk in chunks(arns, SERVICE_DEPLOYMENTS_PER_CALL):
        try:
            found = clients.ecs.describe_service_deployments(serviceDeploymentArns=chunk)
        except AwsFailure as exc:
            error = observation_error(exc, f"ECS service deployments {', '.join(chunk)}")
            out.update(dict.fromkeys(chunk, error))
            continue
        for doc in found.get("serviceDeployments") or []:
            out[str(doc["serviceDeploymentArn"])] = doc
    return out

def native_deployment(clients: AwsClients, cache: TaskDefinitionCache, revisions: dict[str, str | None], arn: str | None, container_name: str,
            found: Mapping[str, Mapping[str, Any] | ObservationError]) -> NativeDeployment | ObservationError | None:
    """One service's current deployment (from `service_deployments`), with the images its target and
    source revisions run (`planner.serving` weighs them): each revision is read once (they never change)."""
    doc = found.get(arn) if arn else None
    if doc is None or isinstance(doc, ObservationError):
        return doc
    ecs = clients.ecs
    revision = (doc.get("targetServiceRevision") or {}).get("arn")
    sources = (s.get("arn") for s in doc.get("sourceServiceRevisions") or [])
    arns = [str(r) for r in dict.fromkeys([revision, *sources]) if r]
    try:
        for chunk in chunks([r for r in arns if r not in revisions], SERVICE_REVISIONS_PER_CALL):
            got = ecs.describe_service_revisions(serviceRevisionArns=chunk).get("serviceRevisions") or []
            described = {str(r.get("serviceRevisionArn")): r.get("taskDefinition") for r in got}
            revisions.update({r: described.get(r) for r in chunk})  # one not found: None
        tds = {r: revisions.get(r) for r in arns}
        images = {r: container_image(cache.fetch(ecs, td), container_name) if td else None
                  for r, td in tds.items()}
    except AwsFailure as exc:
        return observation_error(exc, f"ECS service revisions {', '.join(arns)}")
    return parse_deployment(doc, tds.get(revision or ""), images.get(revision or ""), images)
