variable "region" {
  description = "Region of the SSM parameters."
  type        = string
}

variable "ecs_service_arns" {
  description = "ECS services whose task sets the controller manages."
  type        = list(string)
}

variable "task_role_arns" {
  description = "Execution and task roles of the managed task definition families (passed on registration and RunTask)."
  type        = list(string)
}

variable "listener_arns" {
  description = "ALB listeners whose forward weights the controller sets."
  type        = list(string)
}

variable "distribution_arns" {
  description = "CloudFront distributions the controller switches."
  type        = list(string)
}

variable "frontend_bucket_arns" {
  description = "Frontend buckets whose flags.json the controller publishes."
  type        = list(string)
}

variable "flags_parameter_prefix" {
  description = "SSM path under which the flags parameters live."
  type        = string
  default     = "/release-controller"
}
