variable "name" {
  description = "Cluster and ALB name, e.g. pratiko-production."
  type        = string
}

variable "region" {
  description = "AWS region of the log group."
  type        = string
}

variable "service_name" {
  description = "ECS service name (spec.backend.ecs.service)."
  type        = string
}

variable "container_name" {
  description = "Container whose image a Release sets (spec.backend.ecs.containerName)."
  type        = string
}

variable "container_port" {
  description = "Port of the backend container."
  type        = number
}

variable "initial_image" {
  description = "Image of the first task definition revision; later ones come from Releases."
  type        = string
}

variable "cpu" {
  description = "Fargate task CPU units."
  type        = number
}

variable "memory" {
  description = "Fargate task memory (MiB)."
  type        = number
}

variable "desired_count" {
  description = "Tasks per task set at 100% scale."
  type        = number
}

variable "health_check_path" {
  description = "Target group health check path."
  type        = string
  default     = "/health"
}

variable "vpc_id" {
  description = "VPC of the target groups."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the ALB."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the ALB."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "web_acl_arn" {
  description = "WAFv2 web ACL (REGIONAL) protecting the ALB."
  type        = string
}

variable "access_logs_bucket" {
  description = "S3 bucket for ALB access logs."
  type        = string
}

variable "deletion_protection" {
  description = "Protect the ALB from deletion (on in production)."
  type        = bool
}

variable "flag_parameter_arns" {
  description = "SSM parameters the application may read (its feature flags)."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Retention of the container logs."
  type        = number
}

variable "log_kms_key_arn" {
  description = "KMS key that encrypts the container log group."
  type        = string
}

variable "environment" {
  description = "Plain environment variables of the container (where the database and cache are)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Container environment variables read from Secrets Manager: name -> secret ARN (optionally :json-key::)."
  type        = map(string)
  default     = {}
}

variable "secrets_kms_key_arn" {
  description = "KMS key of those secrets (the execution role may decrypt with it)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
