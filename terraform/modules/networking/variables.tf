variable "name" {
  description = "Name prefix of every resource, e.g. pratiko-production."
  type        = string
}

variable "cidr_block" {
  description = "CIDR of the VPC; subnets are /24s carved from it."
  type        = string
}

variable "availability_zones" {
  description = "Zones of the subnets, e.g. [\"eu-west-1a\", \"eu-west-1b\"] (the ALB needs at least two)."
  type        = list(string)
  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "An ALB needs subnets in at least two availability zones."
  }
}

variable "container_port" {
  description = "The backend container's port, the only one the tasks accept from the ALB."
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the VPC flow logs."
  type        = number
}

variable "log_kms_key_arn" {
  description = "KMS key that encrypts the flow-log group."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
