output "role_arn" {
  description = "The ServiceAccount's eks.amazonaws.com/role-arn annotation (manifests/overlays/*)."
  value       = aws_iam_role.controller.arn
}

output "policy_json" {
  description = "The controller's permissions policy, for review."
  value       = data.aws_iam_policy_document.controller.json
}
