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

# --- alarms --------------------------------------------------------------------------------------
# One map, one resource: each alarm differs only in its metric, threshold and dimensions. A missing
# datapoint breaches for the database and the cache (no metrics from them means they are down) and
# not for the backend's tasks (no tasks is the controller's business, not an alarm's).

locals {
  sustained = { period = 60, evaluation_periods = 5, datapoints_to_alarm = 3, comparison = "GreaterThanThreshold" }
  backend_alarms = {
    "backend-cpu" = merge(local.sustained, {
      description = "Backend tasks use more than ${var.cpu_percent}% CPU", namespace = "AWS/ECS",
      metric      = "CPUUtilization", statistic = "Average", threshold = var.cpu_percent, missing = "notBreaching",
      dimensions  = { ClusterName = var.ecs_cluster_name, ServiceName = var.ecs_service_name },
    })
    "backend-memory" = merge(local.sustained, {
      description = "Backend tasks use more than ${var.memory_percent}% of their memory", namespace = "AWS/ECS",
      metric      = "MemoryUtilization", statistic = "Average", threshold = var.memory_percent, missing = "notBreaching",
      dimensions  = { ClusterName = var.ecs_cluster_name, ServiceName = var.ecs_service_name },
    })
  }
  database_alarms = {
    "db-cpu" = merge(local.sustained, {
      description = "Database CPU above ${var.cpu_percent}%", namespace = "AWS/RDS",
      metric      = "CPUUtilization", statistic = "Average", threshold = var.cpu_percent, missing = "breaching",
      dimensions  = { DBInstanceIdentifier = var.db_instance_id },
    })
    "db-free-storage" = {
      description = "Database free storage below ${var.db_free_storage_gb} GiB", namespace = "AWS/RDS",
      metric      = "FreeStorageSpace", statistic = "Minimum", threshold = var.db_free_storage_gb * 1073741824,
      missing     = "breaching", period = 300, evaluation_periods = 2, datapoints_to_alarm = 2,
      comparison  = "LessThanThreshold", dimensions = { DBInstanceIdentifier = var.db_instance_id },
    }
    "db-connections" = merge(local.sustained, {
      description = "More than ${var.db_max_connections} database connections", namespace = "AWS/RDS",
      metric      = "DatabaseConnections", statistic = "Maximum", threshold = var.db_max_connections,
      missing     = "notBreaching", dimensions = { DBInstanceIdentifier = var.db_instance_id },
    })
  }
  # Per node: ElastiCache publishes engine metrics by CacheClusterId.
  cache_alarms = merge([for node in var.cache_node_ids : {
    "cache-${node}-cpu" = merge(local.sustained, {
      description = "Redis engine CPU of ${node} above ${var.cpu_percent}%", namespace = "AWS/ElastiCache",
      metric      = "EngineCPUUtilization", statistic = "Average", threshold = var.cpu_percent, missing = "breaching",
      dimensions  = { CacheClusterId = node },
    })
    "cache-${node}-memory" = merge(local.sustained, {
      description = "Redis memory of ${node} above ${var.memory_percent}%", namespace = "AWS/ElastiCache",
      metric      = "DatabaseMemoryUsagePercentage", statistic = "Average", threshold = var.memory_percent,
      missing     = "breaching", dimensions = { CacheClusterId = node },
    })
  }]...)
  alarms = merge(local.backend_alarms, local.database_alarms, local.cache_alarms)
}

resource "aws_cloudwatch_metric_alarm" "stack" {
  for_each            = local.alarms
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.datapoints_to_alarm
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  treat_missing_data  = each.value.missing
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  dimensions          = each.value.dimensions
  tags                = var.tags
}
