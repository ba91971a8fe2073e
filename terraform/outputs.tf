# Everything a Release's spec names, plus the controller role for the ServiceAccount annotation.

output "ecs_cluster" {
  description = "spec.backend.ecs.cluster"
  value       = module.ecs.cluster_name
}

output "ecs_service" {
  description = "spec.backend.ecs.service"
  value       = module.ecs.service_name
}

output "ecs_container_name" {
  description = "spec.backend.ecs.containerName"
  value       = module.ecs.container_name
}

output "listener_arn" {
  description = "spec.backend.traffic.listenerArn"
  value       = module.ecs.listener_arn
}

output "stable_target_group_arn" {
  description = "spec.backend.traffic.stableTargetGroupArn"
  value       = module.ecs.stable_target_group_arn
}

output "canary_target_group_arn" {
  description = "spec.backend.traffic.canaryTargetGroupArn"
  value       = module.ecs.canary_target_group_arn
}

output "backend_repository_url" {
  description = "Image prefix of spec.backend.image."
  value       = module.ecr.repository_urls["${var.project}-backend"]
}

output "controller_repository_url" {
  description = "Image of the release-controller Deployment (kustomize images: newName)."
  value       = module.ecr.repository_urls["release-controller"]
}

output "distribution_id" {
  description = "spec.frontend.cloudfront.distributionId"
  value       = module.frontend.distribution_id
}

output "origin_id" {
  description = "spec.frontend.cloudfront.originId"
  value       = module.frontend.origin_id
}

output "frontend_bucket" {
  description = "Bucket CI uploads releases/VERSION/ into."
  value       = module.frontend.bucket_name
}

output "flags_parameters" {
  description = "Feature-flag parameter names by release key."
  value       = module.flags.parameter_names
}

output "alb_dns_name" {
  description = "DNS name of the backend's ALB."
  value       = module.ecs.alb_dns_name
}

output "controller_role_arn" {
  description = "eks.amazonaws.com/role-arn of the release-controller ServiceAccount."
  value       = module.controller_iam.role_arn
}

output "database_address" {
  description = "Host name of the backend's PostgreSQL."
  value       = module.database.address
}

output "database_credentials_secret_arn" {
  description = "Secrets Manager secret with the database's master credentials (kept by RDS)."
  value       = module.database.credentials_secret_arn
}

output "cache_primary_endpoint" {
  description = "Host name of the backend's Redis primary (TLS)."
  value       = module.cache.primary_endpoint
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the backend, database and cache."
  value       = module.monitoring.dashboard_name
}
