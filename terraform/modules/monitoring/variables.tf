variable "name" {
  description = "Name of the dashboard and prefix of the alarms, e.g. pratiko-production."
  type        = string
}

variable "region" {
  description = "Region of the dashboard's metrics."
  type        = string
}

variable "alb_arn_suffix" {
  description = "LoadBalancer dimension of the backend's ALB."
  type        = string
}

variable "ecs_cluster_name" {
  description = "ClusterName dimension of the backend's tasks."
  type        = string
}

variable "ecs_service_name" {
  description = "ServiceName dimension of the backend's tasks."
  type        = string
}

variable "db_instance_id" {
  description = "DBInstanceIdentifier of the database."
  type        = string
}

variable "cache_node_ids" {
  description = "CacheClusterId of each Redis node."
  type        = list(string)
}

variable "cpu_percent" {
  description = "CPU share (backend tasks, database, cache engine) above which the alarms fire (the seed's 80%)."
  type        = number
  default     = 80
}

variable "memory_percent" {
  description = "Memory share (backend tasks, cache) above which the alarms fire (the seed's 85%)."
  type        = number
  default     = 85
}

variable "db_free_storage_gb" {
  description = "Free database storage (GiB) below which the alarm fires."
  type        = number
  default     = 5
}

variable "db_max_connections" {
  description = "Database connections above which the alarm fires."
  type        = number
  default     = 150
}

variable "alarm_actions" {
  description = "ARNs notified on ALARM and OK (e.g. an SNS topic)."
  type        = list(string)
}

variable "tags" {
  description = "Tags for every alarm."
  type        = map(string)
  default     = {}
}
