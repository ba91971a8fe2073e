-- Ask release-controller to abort, as `kubectl release abort` does: a new value of the request
-- annotation is acted on once (the controller records it in status.acknowledged.abort).
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["delivery.pratiko.ai/abort"] = os.date("!%Y-%m-%dT%XZ")
return obj
