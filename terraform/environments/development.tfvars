# terraform apply -var-file=environments/development.tfvars
environment        = "development"
region             = "eu-west-1"
vpc_cidr           = "10.10.0.0/16"
availability_zones = ["eu-west-1a", "eu-west-1b"]

backend = {
  initial_version   = "1.0.0"
  container_name    = "api"
  container_port    = 8000
  cpu               = 256
  memory            = 512
  desired_count     = 1
  health_check_path = "/health"
}

frontend = {
  initial_version = "1.0.0"
  aliases         = ["app.dev.pratiko.ai"]
  certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  web_acl_arn     = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/pratiko-development/00000000-0000-0000-0000-000000000000"
}

alb_web_acl_arn     = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/pratiko-development-alb/00000000-0000-0000-0000-000000000002"
alb_certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000001"
logs_bucket         = "pratiko-development-logs"
deletion_protection = false
log_retention_days  = 30

flag_releases = {
  pratiko = {
    namespace     = "development"
    name          = "pratiko"
    initial_flags = { new_chat_interface = false, enhanced_ai_models = false }
  }
}

database = {
  name                  = "pratiko"
  instance_class        = "db.t4g.small"
  allocated_storage_gb  = 20
  multi_az              = false
  backup_retention_days = 7
}

cache = {
  node_type               = "cache.t4g.micro"
  multi_az                = false
  snapshot_retention_days = 1
}

alarm_actions = ["arn:aws:sns:eu-west-1:123456789012:pratiko-development-alerts"]

controller = {
  eks_cluster_name    = "pratiko-development"
  enable_pod_identity = true
}
