-- Ask release-controller to promote fully, as `kubectl release promote --full` does: every remaining
-- step and its analysis is skipped. The request annotation's new value ends "#full"; plain promote
-- (actions/promote) only ends the current pause.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["delivery.pratiko.ai/promote"] = os.date("!%Y-%m-%dT%XZ") .. "#full"
return obj
