-- Ask release-controller to retry, as `kubectl release retry` does: a new value of the request
-- annotation is acted on once (the controller records it in status.acknowledged.retry).
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["delivery.pratiko.ai/retry"] = os.date("!%Y-%m-%dT%XZ")
return obj
