"""SSH and git:// GitOps repositories go through the tenancy guard too: their host is resolved by the
operator, refused when it is link-local or instance metadata whatever a policy says, and the client
connects to exactly the address checked (no DNS rebinding); and a ReleasePolicy judges the ssh and
scp-like forms of a repository URL like any other URL. No ssh process is started: a forbidden host is
refused before the transport is used."""

from __future__ import annotations

import pytest
from dulwich.client import HttpGitClient, SSHGitClient, TCPGitClient, get_transport_and_path

from controller.api.policy import ReleasePolicy
from controller.api.release import ReleaseSpec
from controller.gitops.writeback import DulwichGitWriter, GitWriteBackError, Rollback, pin
from controller.tenancy.policy import judge
from controller.testing.specs import release_spec


def resolves_to(*addresses: str):  # type: ignore[no-untyped-def]
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return list(addresses)
    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize("url", ["git@git.example.com:team-a/releases.git",
                                 "ssh://git@git.example.com:2222/team-a/releases.git",
                                 "git://git.example.com/team-a/releases.git"])
def test_a_host_resolving_to_instance_metadata_is_refused(url: str) -> None:
    client, _ = get_transport_and_path(url)
    with pytest.raises(GitWriteBackError) as refused:
        pin(client, resolves_to("10.0.0.7", "169.254.169.254"))
    assert refused.value.reason == "GitRepositoryInvalid" and not refused.value.retryable
    assert "169.254" not in refused.value.message and "git.example.com" in refused.value.message


def test_the_client_connects_to_the_address_checked_and_ssh_checks_the_host_key_by_name() -> None:
    ssh, _ = get_transport_and_path("ssh://git@git.example.com:2222/team-a/releases.git")
    resolve = resolves_to("10.0.0.7")
    pinned = pin(ssh, resolve)
    assert isinstance(pinned, SSHGitClient) and pinned.host == "10.0.0.7" and pinned.port == 2222
    assert pinned.ssh_command is not None and "HostKeyAlias=git.example.com" in pinned.ssh_command
    assert resolve.asked == [("git.example.com", 2222)]  # type: ignore[attr-defined]
    git, _ = get_transport_and_path("git://git.example.com/team-a/releases.git")
    assert isinstance(pin(git, resolves_to("10.0.0.8")), TCPGitClient) and git._host == "10.0.0.8"
    http, _ = get_transport_and_path("https://git.example.com/team-a/releases.git")
    assert isinstance(pin(http, resolves_to("169.254.169.254")), HttpGitClient)  # the guarded pool's to check


def test_the_writer_refuses_a_metadata_address_before_any_connection() -> None:
    spec = ReleaseSpec.model_validate(release_spec(
        version="2.0.0", image="repo/app:2.0.0", cluster="c", service="s",
        gitops={"repository": "ssh://git@169.254.169.254/team-a/releases.git", "path": "app.yaml"}))
    assert spec.gitops is not None
    rollback = Rollback("team-a", "app", 2, "2.0.0", "1.0.0", "repo/app:1.0.0", reason="analysis failed")
    with pytest.raises(GitWriteBackError) as refused:
        DulwichGitWriter().write_back(spec.gitops, None, rollback)
    assert refused.value.reason == "GitRepositoryInvalid"


def test_a_policy_judges_ssh_repositories() -> None:
    policy = ReleasePolicy.from_object({"metadata": {"name": "a"}, "spec": {"namespaces": ["team-a"], "allow": {
        "ecsServices": ["c/s"], "images": ["repo/*"], "urls": ["ssh://git.example.com/team-a/*"]}}})

    def spec(repository: str) -> ReleaseSpec:
        return ReleaseSpec.model_validate(release_spec(version="2.0.0", image="repo/app:2.0.0", cluster="c",
                                                       service="s", gitops={"repository": repository, "path": "a.yaml"}))
    assert judge(spec("git@git.example.com:team-a/releases.git"), "team-a", {}, [policy]) is None
    assert judge(spec("ssh://git@git.example.com/team-a/releases.git"), "team-a", {}, [policy]) is None
    refused = judge(spec("git@git.example.com:team-b/releases.git"), "team-a", {}, [policy])
    assert refused is not None and refused.field == "spec.gitops.repository"
