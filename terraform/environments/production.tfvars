# terraform apply -var-file=environments/production.tfvars
environment        = "production"
region             = "eu-west-1"
vpc_cidr           = "10.20.0.0/16"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

backend = {
  initial_version   = "1.0.0"
  container_name    = "api"
  container_port    = 8000
  cpu               = 1024
  memory            = 2048
  desired_count     = 3
  health_check_path = "/health"
}

frontend = {
  initial_version = "1.0.0"
  aliases         = ["app.pratiko.ai"]
  certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  web_acl_arn     = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/pratiko-production/00000000-0000-0000-0000-000000000000"
}

alb_web_acl_arn     = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/pratiko-production-alb/00000000-0000-0000-0000-000000000002"
alb_certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000001"
logs_bucket         = "pratiko-production-logs"
deletion_protection = true
log_retention_days  = 365

flag_releases = {
  pratiko = {
    namespace     = "production"
    name          = "pratiko"
    initial_flags = { new_chat_interface = false, enhanced_ai_models = false }
  }
}

database = {
  name                  = "pratiko"
  instance_class        = "db.r6g.large"
  allocated_storage_gb  = 100
  multi_az              = true
  backup_retention_days = 30
}

cache = {
  node_type               = "cache.r7g.large"
  multi_az                = true
  snapshot_retention_days = 7
}

alarm_actions = ["arn:aws:sns:eu-west-1:123456789012:pratiko-production-alerts"]

controller = {
  eks_cluster_name    = "pratiko-production"
  enable_pod_identity = true
}
