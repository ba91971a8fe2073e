variable "name" {
  description = "Name prefix of the alarms."
  type        = string
}

variable "alb_arn_suffix" {
  description = "LoadBalancer dimension."
  type        = string
}

variable "target_group_arn_suffixes" {
  description = "TargetGroup dimension by tier (stable, canary)."
  type        = map(string)
}

variable "error_rate_threshold" {
  description = "Alarm when the 5xx share exceeds this fraction (the seed's 5%)."
  type        = number
  default     = 0.05
}

variable "p99_latency_seconds" {
  description = "Alarm when p99 latency exceeds this many seconds."
  type        = number
  default     = 2
}

variable "alarm_actions" {
  description = "ARNs notified on ALARM and OK (e.g. an SNS topic)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
