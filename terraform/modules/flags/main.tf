# Feature flags of each Release, one SSM parameter per Release:
#   /release-controller/<namespace>/<release name>/flags  (a JSON object of booleans)
# Terraform creates the parameter with an initial value; the controller writes spec.featureFlags
# into it on each release, so later values are not Terraform's to manage.

resource "aws_ssm_parameter" "flags" {
  #checkov:skip=CKV2_AWS_34:Feature flags are not secrets; a plain String lets the backend and the controller read them without kms:Decrypt.
  for_each    = var.releases
  name        = "/release-controller/${each.value.namespace}/${each.value.name}/flags"
  description = "Feature flags of Release ${each.value.namespace}/${each.value.name}"
  type        = "String"
  tier        = "Standard"
  value       = jsonencode(each.value.initial_flags)
  tags        = var.tags

  lifecycle {
    ignore_changes = [value]
  }
}
