output "alarm_arns" {
  description = "Every alarm, by name."
  value = merge(
    { for tier, a in aws_cloudwatch_metric_alarm.error_rate : a.alarm_name => a.arn },
    { for tier, a in aws_cloudwatch_metric_alarm.p99_latency : a.alarm_name => a.arn },
  )
}
