output "cluster_name" {
  description = "spec.backend.ecs.cluster"
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "spec.backend.ecs.service"
  value       = aws_ecs_service.backend.name
}

output "service_arn" {
  description = "ARN of the ECS service."
  value       = aws_ecs_service.backend.id
}

output "container_name" {
  description = "spec.backend.ecs.containerName"
  value       = var.container_name
}

output "task_definition_family" {
  description = "Family the controller registers new revisions in."
  value       = aws_ecs_task_definition.backend.family
}

output "task_role_arns" {
  description = "Roles a task definition of the family names (the controller passes them on registration)."
  value       = [aws_iam_role.execution.arn, aws_iam_role.task.arn]
}

output "alb_arn" {
  description = "ARN of the ALB."
  value       = aws_lb.this.arn
}

output "alb_arn_suffix" {
  description = "ALB dimension of CloudWatch metrics."
  value       = aws_lb.this.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the ALB."
  value       = aws_lb.this.dns_name
}

output "listener_arn" {
  description = "spec.backend.traffic.listenerArn"
  value       = aws_lb_listener.https.arn
}

output "stable_target_group_arn" {
  description = "spec.backend.traffic.stableTargetGroupArn"
  value       = aws_lb_target_group.backend["stable"].arn
}

output "canary_target_group_arn" {
  description = "spec.backend.traffic.canaryTargetGroupArn"
  value       = aws_lb_target_group.backend["canary"].arn
}

output "target_group_arn_suffixes" {
  description = "TargetGroup dimension of CloudWatch metrics, by tier (stable, canary)."
  value       = { for tier, tg in aws_lb_target_group.backend : tier => tg.arn_suffix }
}
