# Every target does its own set-up, so `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint deps prometheus git binaries flux checkov crds chart helm image dist benchmark clean

# `make test` runs the suite on pytest-xdist workers, each with a local environment of its own
# (tests/conftest.py); e2e tests mostly wait, so more workers than cores pay. Tests sharing a
# module-scoped fixture stay on one worker (--dist loadgroup; the groups are set in tests/conftest.py).
PYTEST_WORKERS ?= 4
# What `make test-fast` leaves out: the local environment, servers of their own, mypy/import-linter
# (`make lint`), and the ship checks (checkov, helm, Terraform: tools built on first use).
FAST_MARKERS := not e2e and not servers and not lint and not ship

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian packages: Prometheus (the real one the analysis queries); git (its `git http-backend` is
# the local Git server, controller/testing/gitserver.py).
deps: prometheus git

prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

git:
	@command -v git >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends git >/dev/null; }

# etcd, kube-apiserver and kubectl built from Go modules, cached under ~/.cache/release-controller.
binaries: $(STAMP)
	$(PY) -m controller.testing.binaries

# Flux's two controllers (tests/e2e/test_gitops_flux.py; the demo does not run them), cached likewise.
flux: $(STAMP)
	$(PY) -m controller.testing.flux

# checkov in a venv of its own (its pins clash with ours), built once per pinned set.
checkov: $(STAMP)
	$(PY) -m tests.ship.checkov_env

# Only what the demo runs: Prometheus, etcd, kube-apiserver and kubectl.
demo: prometheus binaries
	$(PY) -m controller.demo

test: deps binaries flux checkov helm image
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=30

# Two workers: the fast tests are CPU-bound, one core each (70 s serial, 45 s so on this 2-core machine).
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "$(FAST_MARKERS)" -q

lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

crds: $(STAMP)
	$(VENV)/bin/release-controller crds > crds/release.yaml
	$(VENV)/bin/release-controller crds --kind ReleasePolicy > crds/releasepolicy.yaml
	cp crds/release.yaml charts/release-controller/crds/release.yaml
	$(PY) -m controller.api.reference > docs/reference.md
	cp crds/releasepolicy.yaml charts/release-controller/crds/releasepolicy.yaml

benchmark: deps binaries
	$(PY) benchmarks/operator_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache *.egg-info

# The chart keeps copies of the files helm cannot reach outside it (tests/ship/test_chart.py checks them).
chart: crds
	$(PY) -m controller.testing.dist sync
	cp crds/release.yaml charts/release-controller/crds/release.yaml
	cp crds/releasepolicy.yaml charts/release-controller/crds/releasepolicy.yaml
	cp manifests/monitoring/dashboard.json charts/release-controller/files/dashboard.json
	cp manifests/monitoring/prometheusrule.yaml charts/release-controller/files/prometheusrule.yaml
	cp manifests/admission/release-flags-policy.yaml charts/release-controller/files/release-flags-policy.yaml
	cp manifests/admission/rolebinding-policy.yaml charts/release-controller/files/rolebinding-policy.yaml

# helm built from its Go module (controller/testing/helm.py), cached like the other binaries.
helm: $(STAMP)
	$(PY) -m controller.testing.helm

# The operator's image from the shipped Dockerfile, built with Debian's buildah on a base made of
# Debian packages (controller/testing/image.py; no registry is reachable): tagged
# localhost/release-controller:<pyproject version>. The base and the layers are cached.
image: $(STAMP)
	$(PY) -m controller.testing.image

# What a tagged release publishes (.github/workflows/release.yml), made locally into dist/: the
# image as an OCI archive, the chart's .tgz, install.yaml, a CycloneDX SBOM and SHA256SUMS.
dist: image helm
	$(PY) -m controller.testing.dist dist
