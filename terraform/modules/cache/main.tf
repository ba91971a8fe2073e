# The backend's Redis on ElastiCache: a replication group in the private subnets, reachable only
# from the backend tasks, encrypted at rest (the data key) and in transit (TLS), with an AUTH
# token that Terraform generates and keeps in Secrets Manager for the backend's task definition.
# Multi-AZ with automatic failover where var.multi_az (production).

locals {
  replication_group_id = local.replication_group_id
  nodes                = var.multi_az ? 2 : 1
  # ElastiCache names a replication group's nodes <id>-001, <id>-002, ...: known before apply, so
  # the monitoring module can create one alarm per node with for_each.
  node_ids = [for i in range(local.nodes) : format("%s-%03d", local.replication_group_id, i + 1)]
}

resource "aws_elasticache_subnet_group" "this" {
  name        = "${var.name}-cache"
  description = "Private subnets of ${var.name}'s cache"
  subnet_ids  = var.private_subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "cache" {
  name        = "${var.name}-cache"
  description = "Redis of ${var.name}: only from the backend tasks"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "cache_from_tasks" {
  security_group_id            = aws_security_group.cache.id
  description                  = "Redis (TLS) from the backend tasks"
  referenced_security_group_id = var.tasks_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_cache" {
  security_group_id            = var.tasks_security_group_id
  description                  = "To the Redis cache"
  referenced_security_group_id = aws_security_group.cache.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

# Redis AUTH needs 16-128 printable characters; ElastiCache refuses some punctuation.
resource "random_password" "auth" {
  length           = 64
  special          = true
  override_special = "!&#$^<>-"
}

resource "aws_secretsmanager_secret" "auth" {
  #checkov:skip=CKV2_AWS_57:An ElastiCache AUTH token has no Secrets Manager rotation function; it is rotated by changing random_password's keepers (ElastiCache's ROTATE strategy keeps both tokens valid meanwhile).
  name        = "${var.name}/cache/auth-token"
  description = "AUTH token of ${var.name}'s Redis"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "auth" {
  secret_id     = aws_secretsmanager_secret.auth.id
  secret_string = random_password.auth.result
}

resource "aws_elasticache_parameter_group" "this" {
  name        = "${var.name}-redis7"
  family      = "redis7"
  description = "${var.name}: evict least-recently-used keys when full (a cache, not a store)"
  tags        = var.tags

  parameter {
    name  = "maxmemory-policy"
    value = "allkeys-lru"
  }
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV2_AWS_50:Multi-AZ with automatic failover is var.multi_az: true in production.tfvars; development runs one node (checkov cannot read the tfvars).
  replication_group_id = local.replication_group_id
  description          = "Redis of ${var.name}'s backend"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.this.name

  num_cache_clusters         = local.nodes
  automatic_failover_enabled = var.multi_az
  multi_az_enabled           = var.multi_az

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.cache.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.auth.result
  auth_token_update_strategy = "ROTATE"

  auto_minor_version_upgrade = true
  snapshot_retention_limit   = var.snapshot_retention_days
  snapshot_window            = "03:00-04:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  apply_immediately          = false

  tags = var.tags
}
