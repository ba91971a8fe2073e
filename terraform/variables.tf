variable "project" {
  description = "Project name, the prefix of every resource."
  type        = string
  default     = "pratiko"
}

variable "environment" {
  description = "development | staging | production (matches a Release's spec.environment)."
  type        = string
  validation {
    condition     = contains(["development", "staging", "production"], var.environment)
    error_message = "environment must be development, staging or production."
  }
}

variable "region" {
  description = "AWS region of the environment (the controller's AWS_REGION)."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the environment's VPC."
  type        = string
}

variable "availability_zones" {
  description = "Availability zones of the subnets (at least two)."
  type        = list(string)
}

variable "backend" {
  description = "The ECS backend."
  type = object({
    initial_version   = string
    container_name    = string
    container_port    = number
    cpu               = number
    memory            = number
    desired_count     = number
    health_check_path = string
  })
}

variable "frontend" {
  description = "The CloudFront frontend. certificate_arn is an ACM certificate in us-east-1."
  type = object({
    initial_version = string
    aliases         = list(string)
    certificate_arn = string
    web_acl_arn     = string
  })
}

variable "alb_certificate_arn" {
  description = "ACM certificate of the ALB's HTTPS listener (in var.region)."
  type        = string
}

variable "alb_web_acl_arn" {
  description = "WAFv2 web ACL (REGIONAL scope) in front of the ALB."
  type        = string
}

variable "logs_bucket" {
  description = "Existing bucket (name) for ALB, S3 and CloudFront access logs."
  type        = string
}

variable "deletion_protection" {
  description = "Protect the ALB from deletion."
  type        = bool
}

variable "log_retention_days" {
  description = "Retention of flow logs and container logs."
  type        = number
}

variable "flag_releases" {
  description = "Releases whose feature flags live in SSM: {namespace, name, initial_flags}."
  type = map(object({
    namespace     = string
    name          = string
    initial_flags = map(bool)
  }))
}

variable "alarm_error_rate" {
  description = "5xx share above which the error-rate alarms fire."
  type        = number
  default     = 0.05
}

variable "alarm_p99_latency_seconds" {
  description = "p99 latency above which the latency alarms fire."
  type        = number
  default     = 2
}

variable "alarm_actions" {
  description = "Notification targets of the alarms (e.g. SNS topic ARNs)."
  type        = list(string)
  default     = []
}

variable "controller" {
  description = "How the controller's ServiceAccount assumes its role: Pod Identity and/or IRSA."
  type = object({
    eks_cluster_name    = string
    enable_pod_identity = bool
    oidc_provider_arn   = optional(string)
    oidc_issuer         = optional(string)
  })
}

variable "database" {
  description = "The backend's PostgreSQL (RDS): Multi-AZ in production."
  type = object({
    name                  = string
    instance_class        = string
    allocated_storage_gb  = number
    multi_az              = bool
    backup_retention_days = number
  })
}

variable "cache" {
  description = "The backend's Redis (ElastiCache): a replica with automatic failover in production."
  type = object({
    node_type               = string
    multi_az                = bool
    snapshot_retention_days = number
  })
}
