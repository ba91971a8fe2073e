"""The phases of one pass, in the order a rollout meets them (`core.decide` runs them):

  start.check_world      the service (and listener) exist; else say so and stop
  start.take_requests    acknowledge new promote / abort / retry requests, once
  upstream.gate          spec.promotion.requires: a new version waits until verified upstream
  start.reconcile        adopt, start, supersede, retry, or hold a rolled-back Release (onRollback hooks)
  backend.gate           abort, `paused: true`, resume after a pause
  gate.analyse           fold this pass's measurements in; a Failed verdict pauses or rolls back
  backend.reconcile      the preRollout hooks (`hooks.pre_rollout`), the strategy's steps on task
                         sets (or one ECS deployment), then promotion (after the prePromotion hooks)
  settle.keep_warm       the previous backend stays warm for the plan's window, then is deleted
  flags.reconcile        publish the spec's feature flags
  frontend.reconcile     compatibility, the API-contract gate, the CloudFront canary or origin switch
  settle.finish          Succeeded, with the rollback window or the rollout completed; postPromotion hooks
  settle.drift           (Succeeded only) what AWS shows compared with the spec, reported or undone
  preview.tidy           (every pass, last) the preview route removed unless the rollout is at a preview
                         step; `preview.routed` is the walker's check at one

Each is a function `(Inputs, ReleaseStatus) -> Result` (see `planner.draft`); `rollback` holds the
ways back that several phases share, `walker` the step walker both tiers use.
"""
