# The controller's permissions for one scope of ARNs: exactly the AWS actions the controller's code
# calls (tests/ship/test_iam_actions.py collects them from controller/ and fails on any difference),
# each scoped to the given resources where IAM allows scoping. Used for the controller's own role
# and, with one team's ARNs, for each team role (a ReleasePolicy's roleArn): ../main.tf.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id
  # Clusters and tasks of the managed services: arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE
  cluster_arns = distinct([
    for service_arn in var.ecs_service_arns :
    replace(service_arn, "/:service\\/([^/]+)\\/.*$/", ":cluster/$1")
  ])
  task_arns = distinct([
    for service_arn in var.ecs_service_arns :
    replace(service_arn, "/:service\\/([^/]+)\\/.*$/", ":task/$1/*")
  ])
  # Task sets of the managed services: arn:aws:ecs:REGION:ACCOUNT:task-set/CLUSTER/SERVICE/ID
  task_set_arns = [
    for service_arn in var.ecs_service_arns :
    "${replace(service_arn, ":service/", ":task-set/")}/*"
  ]
  # Native deployments (the ECS deployment controller) of the managed services:
  # arn:aws:ecs:REGION:ACCOUNT:service-deployment/CLUSTER/SERVICE/ID and .../service-revision/...
  service_deployment_arns = [
    for service_arn in var.ecs_service_arns :
    "${replace(service_arn, ":service/", ":service-deployment/")}/*"
  ]
  service_revision_arns = [
    for service_arn in var.ecs_service_arns :
    "${replace(service_arn, ":service/", ":service-revision/")}/*"
  ]
  # Rules of the managed listeners: arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener-rule/app/LB/LB_ID/LISTENER_ID/RULE_ID
  listener_rule_arns = [
    for listener_arn in var.listener_arns :
    "${replace(listener_arn, ":listener/", ":listener-rule/")}/*"
  ]
}

data "aws_iam_policy_document" "controller" {
  #checkov:skip=CKV_AWS_356:"*" only for actions without resource-level permissions (ecs:ListServices and ecs:ListTasks, conditioned on the cluster; ecs:DescribeTaskDefinition, ecs:ListTaskDefinitions, ecs:RegisterTaskDefinition, ELBv2 Describe*, cloudfront:ListDistributions, cloudwatch:GetMetricData); every other action is scoped.
  #checkov:skip=CKV_AWS_111:Writes are scoped to the managed services, listeners, distributions, flag parameters and flags.json objects; CloudFront staging copies get IDs only when the controller creates them, hence distribution/* of this account.

  # Observing and moving the backend: one task set per version; the primary one is stable.
  statement {
    sid       = "EcsServices"
    actions   = ["ecs:DescribeServices", "ecs:CreateTaskSet", "ecs:UpdateServicePrimaryTaskSet", "ecs:UpdateService"]
    resources = var.ecs_service_arns
  }

  statement {
    sid       = "EcsTaskSets"
    actions   = ["ecs:UpdateTaskSet", "ecs:DeleteTaskSet"]
    resources = local.task_set_arns
  }

  # Native mode: ECS runs the deployment (UpdateService above); the controller reads it, answers
  # its PAUSE lifecycle hooks and stops it to roll back.
  statement {
    sid       = "EcsServiceDeployments"
    actions   = ["ecs:DescribeServiceDeployments", "ecs:ContinueServiceDeployment", "ecs:StopServiceDeployment"]
    resources = local.service_deployment_arns
  }

  statement {
    sid       = "EcsServiceRevisions"
    actions   = ["ecs:DescribeServiceRevisions"]
    resources = local.service_revision_arns
  }

  # A new version is a new revision of the service's task definition family. These calls have
  # no resource-level permissions.
  # Why a canary's tasks stop (the circuit breaker): ListTasks of its task set, then DescribeTasks.
  statement {
    sid       = "EcsTasksList"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = local.cluster_arns
    }
  }

  # Who else registers with a Release's target groups: the other services of its clusters and their
  # task sets, read once per spec generation (controller/aws/traffic.py).
  statement {
    sid       = "EcsServicesList"
    actions   = ["ecs:ListServices"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = local.cluster_arns
    }
  }

  statement {
    sid       = "EcsClusterServicesDescribe"
    actions   = ["ecs:DescribeServices"]
    resources = [for cluster_arn in local.cluster_arns : "${replace(cluster_arn, ":cluster/", ":service/")}/*"]
  }

  statement {
    sid       = "EcsTasksDescribe"
    actions   = ["ecs:DescribeTasks"]
    resources = local.task_arns
  }

  # An ECR image is checked to exist before a task set is made for it (any repository the spec names).
  statement {
    sid       = "EcrImages"
    actions   = ["ecr:DescribeImages"]
    resources = ["arn:${local.partition}:ecr:*:${local.account}:repository/*"]
  }

  statement {
    sid       = "EcsTaskDefinitions"
    actions   = ["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions", "ecs:RegisterTaskDefinition"]
    resources = ["*"]
  }

  # ecsTask hooks (a migration before a rollout): RunTask of the new revision, in the managed
  # services' clusters only. Its resource is the task definition; ecs:cluster names the cluster.
  statement {
    sid       = "EcsHookTasks"
    actions   = ["ecs:RunTask"]
    resources = ["arn:${local.partition}:ecs:*:${local.account}:task-definition/*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = local.cluster_arns
    }
  }

  # RunTask (the hook task's release-controller/* tags) and RegisterTaskDefinition (the tags copied
  # from the revision before) tag what they create, which ECS authorises as ecs:TagResource; only
  # on creation, never an existing resource.
  statement {
    sid       = "EcsTagOnCreate"
    actions   = ["ecs:TagResource"]
    resources = concat(local.task_arns, ["arn:${local.partition}:ecs:*:${local.account}:task-definition/*"])
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask", "RegisterTaskDefinition"]
    }
  }

  # Registering a revision, and running a task of it (RunTask), passes its execution and task
  # roles, only to ECS tasks.
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = var.task_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "AlbObserve"
    actions   = ["elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"]
    resources = ["*"]
  }

  # A preview route is one listener rule of the controller's (controller/aws/preview.py): created
  # on a managed listener, then modified, moved behind the user's rules, and deleted.
  statement {
    sid       = "AlbPreviewRule"
    actions   = ["elasticloadbalancing:CreateRule", "elasticloadbalancing:ModifyRule", "elasticloadbalancing:SetRulePriorities", "elasticloadbalancing:DeleteRule"]
    resources = concat(var.listener_arns, local.listener_rule_arns)
  }

  # The rule is tagged as it is created (its tag is how the controller finds it again); tagging is
  # allowed only as part of that CreateRule.
  statement {
    sid       = "AlbPreviewRuleTag"
    actions   = ["elasticloadbalancing:AddTags"]
    resources = local.listener_rule_arns
    condition {
      test     = "StringEquals"
      variable = "elasticloadbalancing:CreateAction"
      values   = ["CreateRule"]
    }
  }

  # Canary weights live in the listener's forward action.
  statement {
    sid       = "AlbWeights"
    actions   = ["elasticloadbalancing:ModifyListener"]
    resources = var.listener_arns
  }

  # The frontend's live distribution: its origin path selects the version; a frontend canary
  # copies it into a staging distribution and promotes the staging config back.
  statement {
    sid = "CloudFrontPrimary"
    actions = [
      "cloudfront:CopyDistribution",
      "cloudfront:UpdateDistributionWithStagingConfig",
      "cloudfront:CreateInvalidation",
      "cloudfront:ListInvalidations",
      "cloudfront:GetInvalidation",
    ]
    resources = var.distribution_arns
  }

  # Reading and updating the primary and its staging copy. The copy's ID exists only once
  # CopyDistribution made it (which IAM authorizes as CreateDistribution too), so these are
  # scoped to this account's distributions.
  statement {
    sid = "CloudFrontDistributions"
    actions = [
      "cloudfront:CreateDistribution",
      "cloudfront:GetDistribution",
      "cloudfront:GetDistributionConfig",
      "cloudfront:UpdateDistribution",
    ]
    resources = ["arn:${local.partition}:cloudfront::${local.account}:distribution/*"]
  }

  # Finding a distribution's staging copy (ListDistributions has no resource-level permissions).
  statement {
    sid       = "CloudFrontList"
    actions   = ["cloudfront:ListDistributions"]
    resources = ["*"]
  }

  statement {
    sid = "CloudFrontContinuousDeployment"
    actions = [
      "cloudfront:CreateContinuousDeploymentPolicy",
      "cloudfront:GetContinuousDeploymentPolicy",
      "cloudfront:UpdateContinuousDeploymentPolicy",
    ]
    resources = ["arn:${local.partition}:cloudfront::${local.account}:continuous-deployment-policy/*"]
  }

  # Feature flags: the backend's SSM parameter and the frontend's flags.json.
  statement {
    sid       = "FeatureFlagParameters"
    actions   = ["ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter"]
    resources = ["arn:${local.partition}:ssm:${var.region}:${local.account}:parameter${var.flags_parameter_prefix}/*"]
  }

  statement {
    sid       = "FeatureFlagObjects"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = flatten([for bucket in var.frontend_bucket_arns : ["${bucket}/flags.json", "${bucket}/*/flags.json"]])
  }

  # Analysis with CloudWatch metrics; GetMetricData has no resource-level permissions.
  statement {
    sid       = "CloudWatchAnalysis"
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"]
  }

  # Notifications' eventBridge sink (controller/notify/sinks.py): PutEvents to a bus of this account.
  statement {
    sid       = "EventBridgeNotifications"
    actions   = ["events:PutEvents"]
    resources = ["arn:${local.partition}:events:${var.region}:${local.account}:event-bus/*"]
  }
}
