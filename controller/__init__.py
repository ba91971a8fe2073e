"""release-controller: a Kubernetes operator for coordinated backend (ECS) and frontend (CloudFront) releases."""

__version__ = "0.1.0"
