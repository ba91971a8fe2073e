output "dashboard_name" {
  description = "The CloudWatch dashboard of the stack."
  value       = aws_cloudwatch_dashboard.stack.dashboard_name
}

output "alarm_names" {
  description = "Every alarm of this module."
  value       = [for a in aws_cloudwatch_metric_alarm.stack : a.alarm_name]
}
