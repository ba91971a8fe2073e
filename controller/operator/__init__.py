"""kopf glue, and nothing else: watch Releases, schedule reconcile passes, serve liveness.

Handlers parse nothing and decide nothing: they hand the object to `controller.reconciler.driver`.
This is the only package that imports kopf.
"""
