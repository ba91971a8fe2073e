# The release controller's IAM role. Its policy (./policy) allows exactly the AWS actions the
# controller's code calls (tests/ship/test_iam_actions.py collects them from controller/ and fails
# on any difference), each scoped to the resources of the Releases it manages where IAM allows
# scoping; team roles (below) have the same actions over one team's resources.
#
# The role is assumed through EKS Pod Identity and/or IRSA by the ServiceAccount
# release-controller/release-controller (manifests/base/serviceaccount.yaml).

locals {
  sa_sub = "system:serviceaccount:${var.service_account_namespace}:${var.service_account_name}"
}

data "aws_iam_policy_document" "assume" {
  dynamic "statement" {
    for_each = var.enable_pod_identity ? [1] : []
    content {
      sid     = "EksPodIdentity"
      actions = ["sts:AssumeRole", "sts:TagSession"]
      principals {
        type        = "Service"
        identifiers = ["pods.eks.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.oidc_provider_arn == null ? [] : [1]
    content {
      sid     = "Irsa"
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = [var.oidc_provider_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "${var.oidc_issuer}:sub"
        values   = [local.sa_sub]
      }
      condition {
        test     = "StringEquals"
        variable = "${var.oidc_issuer}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }
}

module "policy" {
  source                 = "./policy"
  region                 = var.region
  ecs_service_arns       = var.ecs_service_arns
  task_role_arns         = var.task_role_arns
  listener_arns          = var.listener_arns
  distribution_arns      = var.distribution_arns
  frontend_bucket_arns   = var.frontend_bucket_arns
  flags_parameter_prefix = var.flags_parameter_prefix
}

resource "aws_iam_role" "controller" {
  name                 = var.role_name
  description          = "release-controller (Kubernetes ServiceAccount ${local.sa_sub})"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role_policy" "controller" {
  name   = "release-controller"
  role   = aws_iam_role.controller.id
  policy = module.policy.json
}

resource "aws_eks_pod_identity_association" "controller" {
  count           = var.enable_pod_identity ? 1 : 0
  cluster_name    = var.eks_cluster_name
  namespace       = var.service_account_namespace
  service_account = var.service_account_name
  role_arn        = aws_iam_role.controller.arn
  tags            = var.tags
}

# Team roles: a ReleasePolicy's `roleArn` (docs: the tenancy section of the README). Every AWS call
# for that team's Releases is made with its role (controller/aws/roles.py assumes it with a session
# named after the namespace and the Release), so AWS itself refuses what the team was not granted.
# Each role has the controller's actions, scoped to that team's ARNs only, and trusts only the
# controller's role.
module "team_policy" {
  for_each               = var.teams
  source                 = "./policy"
  region                 = var.region
  ecs_service_arns       = each.value.ecs_service_arns
  task_role_arns         = each.value.task_role_arns
  listener_arns          = each.value.listener_arns
  distribution_arns      = each.value.distribution_arns
  frontend_bucket_arns   = each.value.frontend_bucket_arns
  flags_parameter_prefix = var.flags_parameter_prefix
}

data "aws_iam_policy_document" "team_trust" {
  statement {
    sid     = "ReleaseController"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.controller.arn]
    }
  }
}

resource "aws_iam_role" "team" {
  for_each             = var.teams
  name                 = "${var.role_name}-${each.key}"
  description          = "release-controller for the Releases of team ${each.key}"
  assume_role_policy   = data.aws_iam_policy_document.team_trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role_policy" "team" {
  for_each = var.teams
  name     = "release-controller"
  role     = aws_iam_role.team[each.key].id
  policy   = module.team_policy[each.key].json
}

data "aws_iam_policy_document" "assume_team_roles" {
  count = length(var.teams) > 0 ? 1 : 0
  statement {
    sid       = "TeamRoles"
    actions   = ["sts:AssumeRole"]
    resources = [for role in aws_iam_role.team : role.arn]
  }
}

resource "aws_iam_role_policy" "assume_team_roles" {
  count  = length(var.teams) > 0 ? 1 : 0
  name   = "release-controller-team-roles"
  role   = aws_iam_role.controller.id
  policy = data.aws_iam_policy_document.assume_team_roles[0].json
}
