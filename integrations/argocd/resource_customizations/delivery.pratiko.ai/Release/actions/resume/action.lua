-- Let a paused rollout go on from where it stopped, as `kubectl release resume` does.
obj.spec.paused = false
return obj
