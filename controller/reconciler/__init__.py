"""The reconciler: one pass of observe -> gather -> decide -> apply -> write status, for one Release.

- `driver`: `Reconciler`, the pass and the bulk resync of settled Releases;
- `gather`: fetches what `planner.needs` says a pass needs (measurements, hooks, upstream, contract);
- `apply`: the effects after AWS (the Git write-back) and the pass's own Events and gauges;
- `backoff`: the one place that turns a pass's outcome into its requeue-after;
- `ports`: the Protocols through which a pass reaches the world (effectors plug in here);
- `memory`: what this process remembers of one Release between passes.

It must not import kopf (the operator calls `Reconciler.reconcile` from a worker thread), build a
condition (the planner does, refusals included), or import the planner's phases or standing.
See docs/architecture.md.
"""
