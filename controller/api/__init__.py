"""The Release API: spec and status models (`release`), scalar types (`types`), and the CRD (`crd`)."""
