"""The reconciler: one pass of observe -> decide -> apply -> write status for one Release.

- `driver`: `Reconciler`, the pass and the bulk resync of settled Releases;
- `ports`: the Protocols through which a pass reaches the world (effectors plug in here);
- `memory`: what this process remembers of one Release between passes.

It must not import kopf: the operator calls `Reconciler.reconcile` from a worker thread.
"""
