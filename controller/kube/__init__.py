"""Kubernetes: the client the operator and the CLI share (`client`: Releases, their status and Events,
Secrets) and the claims that make one Release the owner of each AWS resource it names (`claims`)."""
