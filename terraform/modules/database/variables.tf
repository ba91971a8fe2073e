variable "name" {
  description = "Prefix of the database's resources, e.g. pratiko-production."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database's security group."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (one per availability zone) of the DB subnet group."
  type        = list(string)
}

variable "tasks_security_group_id" {
  description = "Security group of the backend tasks, the only clients."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the master credentials' secret."
  type        = string
}

variable "multi_az" {
  description = "A standby in another availability zone (production)."
  type        = bool
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "allocated_storage_gb" {
  description = "Initial storage (GiB); autoscaling may grow it to four times this."
  type        = number
}

variable "engine_version" {
  description = "PostgreSQL major.minor (the parameter group is postgres16)."
  type        = string
  default     = "16.4"
}

variable "database_name" {
  description = "Name of the application's database."
  type        = string
}

variable "master_username" {
  description = "Master user name; its password is generated and kept by RDS in Secrets Manager."
  type        = string
  default     = "app_admin"
}

variable "backup_retention_days" {
  description = "Days of automated backups."
  type        = number
}

variable "deletion_protection" {
  description = "Refuse deletion of the instance (on in production)."
  type        = bool
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
