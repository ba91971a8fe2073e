-- Argo CD health of a delivery.pratiko.ai Release (release-controller).
--
-- Reads the same status kstatus reads (Flux, Helm --wait), so both tools agree:
--   spec generation not yet observed            -> Progressing
--   Stalled=True (rolled back, invalid spec,
--     incompatible frontend, conflict)          -> Degraded
--   phase RolledBack or Failed                  -> Degraded (also from a controller without Stalled)
--   phase Paused (spec.paused, or a pause
--     that waits for promote)                   -> Suspended
--   Ready=True at the current generation        -> Healthy
--   anything else (rolling out, waiting on AWS) -> Progressing
-- Runs with only Argo CD's default libraries (base, table): no string.* or math.*.

local function text(value, fallback)
  if value ~= nil and value ~= "" then
    return value
  end
  return fallback
end

local generation = obj.metadata.generation
local status = obj.status

if status == nil or status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  local wanted = "the spec"
  if generation ~= nil then
    wanted = "generation " .. tostring(generation)
  end
  return {status = "Progressing", message = "Waiting for release-controller to observe " .. wanted}
end

-- A condition written for an older generation says nothing about this spec.
local function condition(kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      if c.observedGeneration ~= nil and generation ~= nil and c.observedGeneration < generation then
        return nil
      end
      return c
    end
  end
  return nil
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  return {status = "Degraded", message = text(stalled.reason, "Stalled") .. ": " .. text(stalled.message, text(status.message, "stalled"))}
end

local phase = status.phase
if phase == "RolledBack" or phase == "Failed" then
  return {status = "Degraded", message = phase .. ": " .. text(status.message, "the rollout did not complete")}
end

-- What the rollout is doing now, in the words of the most specific condition that says it.
local function doing(fallback)
  for _, kind in ipairs({"Reconciling", "Progressing"}) do
    local c = condition(kind)
    if c ~= nil and c.status ~= "False" and c.message ~= nil and c.message ~= "" then
      return c.message
    end
  end
  return text(status.message, fallback)
end

if phase == "Paused" then
  return {status = "Suspended", message = doing("the rollout is paused")}
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = text(ready.message, text(status.message, "the spec is live"))}
end

return {status = "Progressing", message = doing("Waiting for the rollout to finish")}
