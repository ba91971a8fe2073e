variable "role_name" {
  description = "Name of the controller's role, e.g. release-controller-production."
  type        = string
}

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

variable "service_account_namespace" {
  description = "Namespace of the controller's ServiceAccount."
  type        = string
  default     = "release-controller"
}

variable "service_account_name" {
  description = "Name of the controller's ServiceAccount."
  type        = string
  default     = "release-controller"
}

variable "enable_pod_identity" {
  description = "Trust EKS Pod Identity and associate the role with the ServiceAccount."
  type        = bool
  default     = true
}

variable "eks_cluster_name" {
  description = "EKS cluster running the controller (for the Pod Identity association)."
  type        = string
}

variable "oidc_provider_arn" {
  description = "IAM OIDC provider of the EKS cluster, to trust IRSA as well (null: Pod Identity only)."
  type        = string
  default     = null
}

variable "oidc_issuer" {
  description = "OIDC issuer host and path without https://, e.g. oidc.eks.eu-west-1.amazonaws.com/id/ABC (with oidc_provider_arn)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "teams" {
  description = "Team roles (a ReleasePolicy's roleArn), by team name: the ARNs each team's Releases may move."
  type = map(object({
    ecs_service_arns     = list(string)
    task_role_arns       = list(string)
    listener_arns        = list(string)
    distribution_arns    = optional(list(string), [])
    frontend_bucket_arns = optional(list(string), [])
  }))
  default = {}
}
