"""GitOps integration: writing a rollback back to the Git file a Release comes from."""
