output "json" {
  description = "The permissions policy document."
  value       = data.aws_iam_policy_document.controller.json
}
