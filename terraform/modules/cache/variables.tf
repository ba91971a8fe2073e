variable "name" {
  description = "Prefix of the cache's resources, e.g. pratiko-production."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache's security group."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the cache subnet group."
  type        = list(string)
}

variable "tasks_security_group_id" {
  description = "Security group of the backend tasks, the only clients."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the data at rest and the AUTH token's secret."
  type        = string
}

variable "multi_az" {
  description = "A replica in another availability zone with automatic failover (production)."
  type        = bool
}

variable "node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "engine_version" {
  description = "Redis engine version (the parameter group is redis7)."
  type        = string
  default     = "7.1"
}

variable "snapshot_retention_days" {
  description = "Days of daily snapshots."
  type        = number
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
