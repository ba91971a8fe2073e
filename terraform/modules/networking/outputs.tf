output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Subnets of the ALB."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Subnets of the ECS tasks (the controller's task sets use them too)."
  value       = aws_subnet.private[*].id
}

output "alb_security_group_id" {
  description = "Security group of the ALB."
  value       = aws_security_group.alb.id
}

output "tasks_security_group_id" {
  description = "Security group of the backend tasks."
  value       = aws_security_group.tasks.id
}
