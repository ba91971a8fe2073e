-- Ask release-controller to end the current pause and go to the next step, as `kubectl release
-- promote` does (actions/promote-full skips every remaining step): a new value of the request
-- annotation is acted on once (the controller records it in status.acknowledged.promote).
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["delivery.pratiko.ai/promote"] = os.date("!%Y-%m-%dT%XZ")
return obj
