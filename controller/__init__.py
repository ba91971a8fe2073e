"""release-controller: a Kubernetes operator for coordinated backend (ECS) and frontend (CloudFront) releases."""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml is the one place the version is written; the chart, the image tag and the
    # manifests follow it (`make chart`; tests/ship/test_release.py checks they agree).
    __version__ = version("release-controller")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
