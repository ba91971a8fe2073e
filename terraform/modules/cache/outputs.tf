output "replication_group_id" {
  description = "Replication group id (the ReplicationGroupId dimension of its metrics)."
  value       = aws_elasticache_replication_group.this.id
}

output "node_ids" {
  description = "Node ids (the CacheClusterId dimension of per-node metrics), known before apply."
  value       = local.node_ids
}

output "primary_endpoint" {
  description = "Host name of the primary (TLS)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "Port of the cache."
  value       = aws_elasticache_replication_group.this.port
}

output "auth_token_secret_arn" {
  description = "Secrets Manager secret holding the AUTH token."
  value       = aws_secretsmanager_secret.auth.arn
}

output "security_group_id" {
  description = "Security group of the cache."
  value       = aws_security_group.cache.id
}
