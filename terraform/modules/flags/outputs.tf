output "parameter_names" {
  description = "Flags parameter name by release key."
  value       = { for key, p in aws_ssm_parameter.flags : key => p.name }
}

output "parameter_arns" {
  description = "Flags parameter ARNs (the backend task reads them, the controller writes them)."
  value       = [for p in aws_ssm_parameter.flags : p.arn]
}
