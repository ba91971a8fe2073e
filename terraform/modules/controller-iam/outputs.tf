output "role_arn" {
  description = "The ServiceAccount's eks.amazonaws.com/role-arn annotation (manifests/overlays/*)."
  value       = aws_iam_role.controller.arn
}

output "policy_json" {
  description = "The controller's permissions policy, for review."
  value       = module.policy.json
}

output "team_role_arns" {
  description = "Each team's role ARN, by team name: the roleArn of that team's ReleasePolicy."
  value       = { for team, role in aws_iam_role.team : team => role.arn }
}
