# One environment of the application the release controller ships: networking, ECR, the backend
# on ECS behind an ALB with its PostgreSQL (RDS) and Redis (ElastiCache), the frontend on S3 +
# CloudFront, feature-flag parameters, alarms and a dashboard, and the controller's IAM role. `terraform apply -var-file=environments/<env>.tfvars`; the outputs are
# the ARNs and IDs a Release's spec needs (see outputs.tf).

locals {
  name = "${var.project}-${var.environment}"
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# Encrypts the log groups (flow logs, container logs) and ECR images.
data "aws_iam_policy_document" "logs_key" {
  #checkov:skip=CKV_AWS_111:A key policy's "*" resource means this key only; write access is limited to the account and CloudWatch Logs.
  #checkov:skip=CKV_AWS_356:A key policy's "*" resource means this key only.
  #checkov:skip=CKV_AWS_109:The account root statement is the standard key policy that lets IAM policies govern the key.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsUse"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "logs" {
  description             = "${local.name} logs and images"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.logs_key.json
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${local.name}-logs"
  target_key_id = aws_kms_key.logs.key_id
}

# Encrypts the data stores: the database's storage, Performance Insights and master-credentials
# secret, the cache at rest and its AUTH token's secret. Kept apart from the logs key so that
# access to logs never implies access to data.
data "aws_iam_policy_document" "data_key" {
  #checkov:skip=CKV_AWS_111:A key policy's "*" resource means this key only; the one statement hands the key to the account's IAM policies.
  #checkov:skip=CKV_AWS_356:A key policy's "*" resource means this key only.
  #checkov:skip=CKV_AWS_109:The account root statement is the standard key policy that lets IAM policies govern the key.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "data" {
  description             = "${local.name} database and cache"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.data_key.json
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

module "networking" {
  source             = "./modules/networking"
  name               = local.name
  cidr_block         = var.vpc_cidr
  availability_zones = var.availability_zones
  container_port     = var.backend.container_port
  log_retention_days = var.log_retention_days
  log_kms_key_arn    = aws_kms_key.logs.arn
}

module "ecr" {
  source       = "./modules/ecr"
  repositories = ["${var.project}-backend", "release-controller"]
  kms_key_arn  = aws_kms_key.logs.arn
}

module "flags" {
  source   = "./modules/flags"
  releases = var.flag_releases
}

# The backend's environment says where the database and the cache are, and its secrets carry their
# credentials (from Secrets Manager, read by ECS at task start): its health check reaches both.
module "ecs" {
  source                = "./modules/ecs"
  name                  = local.name
  region                = var.region
  service_name          = "${var.project}-backend"
  container_name        = var.backend.container_name
  container_port        = var.backend.container_port
  initial_image         = "${module.ecr.repository_urls["${var.project}-backend"]}:${var.backend.initial_version}"
  cpu                   = var.backend.cpu
  memory                = var.backend.memory
  desired_count         = var.backend.desired_count
  health_check_path     = var.backend.health_check_path
  vpc_id                = module.networking.vpc_id
  public_subnet_ids     = module.networking.public_subnet_ids
  alb_security_group_id = module.networking.alb_security_group_id
  certificate_arn       = var.alb_certificate_arn
  web_acl_arn           = var.alb_web_acl_arn
  access_logs_bucket    = var.logs_bucket
  deletion_protection   = var.deletion_protection
  flag_parameter_arns   = module.flags.parameter_arns
  log_retention_days    = var.log_retention_days
  log_kms_key_arn       = aws_kms_key.logs.arn
  environment = {
    DATABASE_HOST = module.database.address
    DATABASE_PORT = tostring(module.database.port)
    DATABASE_NAME = module.database.database_name
    DATABASE_SSL  = "require"
    REDIS_HOST    = module.cache.primary_endpoint
    REDIS_PORT    = tostring(module.cache.port)
    REDIS_TLS     = "true"
  }
  secrets = {
    DATABASE_USER     = "${module.database.credentials_secret_arn}:username::"
    DATABASE_PASSWORD = "${module.database.credentials_secret_arn}:password::"
    REDIS_AUTH_TOKEN  = module.cache.auth_token_secret_arn
  }
  secrets_kms_key_arn = aws_kms_key.data.arn
}

module "database" {
  source                  = "./modules/database"
  name                    = local.name
  vpc_id                  = module.networking.vpc_id
  private_subnet_ids      = module.networking.private_subnet_ids
  tasks_security_group_id = module.networking.tasks_security_group_id
  kms_key_arn             = aws_kms_key.data.arn
  multi_az                = var.database.multi_az
  instance_class          = var.database.instance_class
  allocated_storage_gb    = var.database.allocated_storage_gb
  database_name           = var.database.name
  backup_retention_days   = var.database.backup_retention_days
  deletion_protection     = var.deletion_protection
}

module "cache" {
  source                  = "./modules/cache"
  name                    = local.name
  vpc_id                  = module.networking.vpc_id
  private_subnet_ids      = module.networking.private_subnet_ids
  tasks_security_group_id = module.networking.tasks_security_group_id
  kms_key_arn             = aws_kms_key.data.arn
  multi_az                = var.cache.multi_az
  node_type               = var.cache.node_type
  snapshot_retention_days = var.cache.snapshot_retention_days
}

module "monitoring" {
  source           = "./modules/monitoring"
  name             = local.name
  region           = var.region
  alb_arn_suffix   = module.ecs.alb_arn_suffix
  ecs_cluster_name = module.ecs.cluster_name
  ecs_service_name = module.ecs.service_name
  db_instance_id   = module.database.instance_id
  cache_node_ids   = module.cache.node_ids
  alarm_actions    = var.alarm_actions
}

module "frontend" {
  source          = "./modules/frontend"
  name            = local.name
  bucket_name     = "${local.name}-web"
  initial_version = var.frontend.initial_version
  aliases         = var.frontend.aliases
  certificate_arn = var.frontend.certificate_arn
  web_acl_arn     = var.frontend.web_acl_arn
  logs_bucket     = var.logs_bucket
}

module "alarms" {
  source                    = "./modules/alarms"
  name                      = local.name
  alb_arn_suffix            = module.ecs.alb_arn_suffix
  target_group_arn_suffixes = module.ecs.target_group_arn_suffixes
  error_rate_threshold      = var.alarm_error_rate
  p99_latency_seconds       = var.alarm_p99_latency_seconds
  alarm_actions             = var.alarm_actions
}

module "controller_iam" {
  source               = "./modules/controller-iam"
  role_name            = "release-controller-${var.environment}"
  region               = var.region
  ecs_service_arns     = [module.ecs.service_arn]
  task_role_arns       = module.ecs.task_role_arns
  listener_arns        = [module.ecs.listener_arn]
  distribution_arns    = [module.frontend.distribution_arn]
  frontend_bucket_arns = [module.frontend.bucket_arn]
  enable_pod_identity  = var.controller.enable_pod_identity
  eks_cluster_name     = var.controller.eks_cluster_name
  oidc_provider_arn    = var.controller.oidc_provider_arn
  oidc_issuer          = var.controller.oidc_issuer
}
