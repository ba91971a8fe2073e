output "dashboard_name" {
  description = "The CloudWatch dashboard of the stack."
  value       = aws_cloudwatch_dashboard.stack.dashboard_name
}

output "alarm_names" {
  description = "Every alarm of this module."
  value = concat(
    [aws_cloudwatch_metric_alarm.ecs_cpu.alarm_name, aws_cloudwatch_metric_alarm.ecs_memory.alarm_name],
    [aws_cloudwatch_metric_alarm.db_cpu.alarm_name, aws_cloudwatch_metric_alarm.db_storage.alarm_name, aws_cloudwatch_metric_alarm.db_connections.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.cache_cpu : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.cache_memory : a.alarm_name],
  )
}
