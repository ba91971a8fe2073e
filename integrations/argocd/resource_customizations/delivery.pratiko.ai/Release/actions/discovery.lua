-- Actions Argo CD offers on a delivery.pratiko.ai Release, and when each one can do something.
-- promote/promote-full/abort/retry record a request annotation, as `kubectl release promote [--full]|abort|retry`
-- does (promote ends the current pause, promote-full skips every remaining step);
-- pause/resume set spec.paused, as `kubectl release pause|resume` does.
local actions = {}
local phase = nil
local stalled = false
if obj.status ~= nil then
  phase = obj.status.phase
  if obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == "Stalled" and c.status == "True" then
        stalled = true
      end
    end
  end
end
local paused = obj.spec.paused == true
local rolling = (phase == "Progressing" or phase == "Paused") and not stalled

-- A promote made while spec.paused holds a rollout would wait for the resume: offer resume instead.
actions["promote"] = {["disabled"] = not rolling or paused}
actions["promote-full"] = {["disabled"] = not rolling or paused}
actions["abort"] = {["disabled"] = not (phase == "Progressing" or phase == "Paused")}
actions["retry"] = {["disabled"] = not (phase == "RolledBack" or phase == "Failed" or stalled)}
actions["pause"] = {["disabled"] = paused}
actions["resume"] = {["disabled"] = not paused}
return actions
