-- Ask release-controller to promote, as `kubectl release promote` does: a new value of the request
-- annotation is acted on once (the controller records it in status.acknowledged.promote).
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["delivery.pratiko.ai/promote"] = os.date("!%Y-%m-%dT%XZ")
return obj
