# The release-controller operator image.
#
# Two stages on the same pinned base (the BASE argument): the builder turns the repository into a
# wheel and installs it with its dependencies into /opt/venv; the runtime stage copies only that venv. The runtime runs as
# a numeric non-root user (so `runAsNonRoot` can be verified by the kubelet) and writes nowhere but
# /tmp, which the Deployment mounts as an emptyDir under a read-only root filesystem.

# BASE: any image with python3.11, pip and venv at /usr/bin or /usr/local/bin. Users build from the
# official slim image; the tests build from a base of Debian packages (controller/testing/image.py:
# no registry is reachable there), with `--build-arg BASE=...`.
# checkov reads `FROM ${BASE}` as untagged; the default below is an exact version, and
# tests/ship/test_dockerfile.py checks it is:
#checkov:skip=CKV_DOCKER_7:The base is the BASE build argument, pinned to an exact version by default
ARG BASE=python:3.11.13-slim-bookworm

FROM ${BASE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# The runtime user has a name: kopf names the process after it at start (getpass.getuser()), even
# without peering, when POD_ID is not set, as in a plain `docker run`, and a uid without a passwd
# entry makes that fail.
RUN groupadd --gid 10001 release-controller \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin release-controller

WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller ./controller

# The wheel is built without dependencies, then installed into the venv that the runtime copies:
# what ships is exactly what `pip install release-controller` would give a user.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-compile /wheels/*.whl

FROM ${BASE}

LABEL org.opencontainers.image.title="release-controller" \
      org.opencontainers.image.description="Kubernetes operator for coordinated ECS + CloudFront releases" \
      org.opencontainers.image.licenses="Apache-2.0"

# No .pyc files are written at run time (the root filesystem is read-only); HOME points at the
# writable /tmp for libraries that cache there (botocore, kubernetes client).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /etc/passwd /etc/group /etc/

USER 10001:10001

# 8080: kopf liveness endpoint (/healthz); 9090: Prometheus metrics (/metrics).
EXPOSE 8080 9090

# Kubernetes probes /healthz itself (see manifests/base/deployment.yaml); a Docker HEALTHCHECK would
# only duplicate them and is ignored by the kubelet.
HEALTHCHECK NONE

ENTRYPOINT ["release-controller", "run"]
CMD ["--all-namespaces", "--liveness-port", "8080", "--metrics-port", "9090", "--log-format", "json"]
