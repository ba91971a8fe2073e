# One CloudWatch dashboard for the whole stack (backend, database, cache) and the alarms of the
# database, the cache and the backend's tasks. The backend's per-target-group alarms (5xx share,
# p99 latency: what a canary is judged by) stay in modules/alarms; this dashboard shows them.

locals {
  alb_dims = ["LoadBalancer", var.alb_arn_suffix]
  ecs_dims = ["ClusterName", var.ecs_cluster_name, "ServiceName", var.ecs_service_name]
  db_dims  = ["DBInstanceIdentifier", var.db_instance_id]
  widget = {
    type   = "metric"
    width  = 8
    height = 6
  }
  widgets = [
    { title = "Backend requests and 5xx", stat = "Sum", metrics = [
      concat(["AWS/ApplicationELB", "RequestCount"], local.alb_dims),
      concat(["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"], local.alb_dims),
    ] },
    { title = "Backend p99 latency (s)", stat = "p99", metrics = [
      concat(["AWS/ApplicationELB", "TargetResponseTime"], local.alb_dims),
    ] },
    { title = "Backend tasks CPU and memory (%)", stat = "Average", metrics = [
      concat(["AWS/ECS", "CPUUtilization"], local.ecs_dims),
      concat(["AWS/ECS", "MemoryUtilization"], local.ecs_dims),
    ] },
    { title = "Database CPU (%)", stat = "Average", metrics = [
      concat(["AWS/RDS", "CPUUtilization"], local.db_dims),
    ] },
    { title = "Database connections", stat = "Maximum", metrics = [
      concat(["AWS/RDS", "DatabaseConnections"], local.db_dims),
    ] },
    { title = "Database free storage (bytes)", stat = "Minimum", metrics = [
      concat(["AWS/RDS", "FreeStorageSpace"], local.db_dims),
    ] },
    { title = "Cache CPU and memory (%)", stat = "Average", metrics = [
      for node in var.cache_node_ids : ["AWS/ElastiCache", "EngineCPUUtilization", "CacheClusterId", node]
      ], extra = [
      for node in var.cache_node_ids : ["AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "CacheClusterId", node]
    ] },
    { title = "Cache hits, misses and evictions", stat = "Sum", metrics = [
      for node in var.cache_node_ids : ["AWS/ElastiCache", "Evictions", "CacheClusterId", node]
      ], extra = [
      for node in var.cache_node_ids : ["AWS/ElastiCache", "CacheMisses", "CacheClusterId", node]
    ] },
  ]
}

resource "aws_cloudwatch_dashboard" "stack" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [for i, w in local.widgets : merge(local.widget, {
      x = (i % 3) * 8
      y = floor(i / 3) * 6
      properties = {
        title   = w.title
        region  = var.region
        stat    = w.stat
        period  = 60
        view    = "timeSeries"
        metrics = concat(w.metrics, lookup(w, "extra", []))
      }
    })]
  })
}

# --- backend tasks -----------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "ecs_cpu" {
  alarm_name          = "${var.name}-backend-cpu"
  alarm_description   = "Backend tasks use more than ${var.cpu_percent}% CPU"
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.cpu_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  dimensions          = { ClusterName = var.ecs_cluster_name, ServiceName = var.ecs_service_name }
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "ecs_memory" {
  alarm_name          = "${var.name}-backend-memory"
  alarm_description   = "Backend tasks use more than ${var.memory_percent}% of their memory"
  namespace           = "AWS/ECS"
  metric_name         = "MemoryUtilization"
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.memory_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  dimensions          = { ClusterName = var.ecs_cluster_name, ServiceName = var.ecs_service_name }
  tags                = var.tags
}

# --- database ----------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "db_cpu" {
  alarm_name          = "${var.name}-db-cpu"
  alarm_description   = "Database CPU above ${var.cpu_percent}%"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.cpu_percent
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  dimensions          = { DBInstanceIdentifier = var.db_instance_id }
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "db_storage" {
  alarm_name          = "${var.name}-db-free-storage"
  alarm_description   = "Database free storage below ${var.db_free_storage_gb} GiB"
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "LessThanThreshold"
  threshold           = var.db_free_storage_gb * 1073741824
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  dimensions          = { DBInstanceIdentifier = var.db_instance_id }
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "db_connections" {
  alarm_name          = "${var.name}-db-connections"
  alarm_description   = "More than ${var.db_max_connections} database connections"
  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.db_max_connections
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  dimensions          = { DBInstanceIdentifier = var.db_instance_id }
  tags                = var.tags
}

# --- cache (per node: ElastiCache publishes engine metrics by CacheClusterId) -------------------

resource "aws_cloudwatch_metric_alarm" "cache_cpu" {
  for_each            = toset(var.cache_node_ids)
  alarm_name          = "${var.name}-cache-${each.key}-cpu"
  alarm_description   = "Redis engine CPU of ${each.key} above ${var.cpu_percent}%"
  namespace           = "AWS/ElastiCache"
  metric_name         = "EngineCPUUtilization"
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.cpu_percent
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  dimensions          = { CacheClusterId = each.key }
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "cache_memory" {
  for_each            = toset(var.cache_node_ids)
  alarm_name          = "${var.name}-cache-${each.key}-memory"
  alarm_description   = "Redis memory of ${each.key} above ${var.memory_percent}%"
  namespace           = "AWS/ElastiCache"
  metric_name         = "DatabaseMemoryUsagePercentage"
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.memory_percent
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  dimensions          = { CacheClusterId = each.key }
  tags                = var.tags
}
