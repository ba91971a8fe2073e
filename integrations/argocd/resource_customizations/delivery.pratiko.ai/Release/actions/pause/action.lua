-- Hold the rollout at its current step, timers included, as `kubectl release pause` does.
obj.spec.paused = true
return obj
