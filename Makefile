# Every target does its own set-up, so `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint deps binaries checkov crds chart helm benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian packages: Prometheus (the real one the analysis queries); git (its `git http-backend` is
# the local Git server, controller/testing/gitserver.py).
deps:
	@command -v prometheus >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@command -v git >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends git >/dev/null; }

# etcd, kube-apiserver and Flux's two controllers built from Go modules, cached under
# ~/.cache/release-controller.
binaries: $(STAMP)
	$(PY) -m controller.testing.binaries
	$(PY) -m controller.testing.flux

# checkov in a venv of its own (its pins clash with ours), built once per pinned set.
checkov: $(STAMP)
	$(PY) -m tests.ship.checkov_env

demo: deps binaries
	$(PY) -m controller.demo

test: deps binaries checkov helm
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest tests/api tests/cli tests/contract tests/manifests tests/operator tests/reconciler tests/planner tests/analysis tests/test_logs.py tests/aws/test_ecs_task_hooks.py -q

lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

crds: $(STAMP)
	$(VENV)/bin/release-controller crds > crds/release.yaml
	cp crds/release.yaml charts/release-controller/crds/release.yaml

benchmark: deps binaries
	$(PY) benchmarks/operator_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache *.egg-info

# The chart keeps copies of the files helm cannot reach outside it (tests/ship/test_chart.py checks them).
chart: crds
	cp crds/release.yaml charts/release-controller/crds/release.yaml
	cp manifests/crds/kopf-peerings.yaml charts/release-controller/crds/kopf-peerings.yaml
	cp manifests/monitoring/dashboard.json charts/release-controller/files/dashboard.json
	cp manifests/monitoring/prometheusrule.yaml charts/release-controller/files/prometheusrule.yaml
	cp manifests/admission/release-flags-policy.yaml charts/release-controller/files/release-flags-policy.yaml

# helm built from its Go module (controller/testing/helm.py), cached like the other binaries.
helm: $(STAMP)
	$(PY) -m controller.testing.helm
