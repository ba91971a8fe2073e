# The frontend: every version is uploaded under s3://BUCKET/releases/VERSION/ by CI, and the
# distribution serves one of them through its origin path. A Release switches versions by
# changing the origin path of origin "web" (spec.frontend.cloudfront.originId), so Terraform
# creates the origin and leaves its path to the controller afterwards.

resource "aws_s3_bucket" "web" {
  #checkov:skip=CKV_AWS_144:Every frontend version is rebuilt by CI from git; a replica in another region adds cost without a recovery need.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) on purpose: CloudFront's origin access control reads it without a KMS key grant.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events; uploads are made by CI and announced by a Release.
  bucket = var.bucket_name
  tags   = var.tags
}

resource "aws_s3_bucket_ownership_controls" "web" {
  bucket = aws_s3_bucket.web.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "web" {
  bucket                  = aws_s3_bucket.web.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "web" {
  bucket = aws_s3_bucket.web.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "web" {
  bucket = aws_s3_bucket.web.id
  rule {
    apply_server_side_encryption_by_default {
      # SSE-S3: CloudFront's origin access control reads SSE-S3 objects without a KMS grant.
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_logging" "web" {
  bucket        = aws_s3_bucket.web.id
  target_bucket = var.logs_bucket
  target_prefix = "s3/${var.bucket_name}/"
}

# Old versions' objects are superseded by new uploads of the same key only by accident (each
# version has its own prefix); noncurrent copies expire after the rollback horizon.
resource "aws_s3_bucket_lifecycle_configuration" "web" {
  bucket = aws_s3_bucket.web.id
  rule {
    id     = "expire-noncurrent"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_cloudfront_origin_access_control" "web" {
  name                              = var.bucket_name
  description                       = "CloudFront reads ${var.bucket_name} with SigV4"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_response_headers_policy" "web" {
  name = "${var.name}-security-headers"
  security_headers_config {
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
  }
}

resource "aws_cloudfront_distribution" "web" {
  #checkov:skip=CKV_AWS_374:The application serves a worldwide audience; there is no country to exclude.
  #checkov:skip=CKV_AWS_310:One origin on purpose: the controller switches versions through origin "web"'s path, and an origin group would need a replicated bucket kept in step.
  #checkov:skip=CKV2_AWS_47:The web ACL is managed outside this stack (var.web_acl_arn); its rule groups, including the Log4j AMR, are reviewed there.
  enabled             = true
  is_ipv6_enabled     = true
  comment             = "${var.name} frontend"
  default_root_object = "index.html"
  aliases             = var.aliases
  web_acl_id          = var.web_acl_arn
  price_class         = var.price_class
  tags                = var.tags

  origin {
    origin_id                = "web"
    domain_name              = aws_s3_bucket.web.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.web.id
    origin_path              = "/releases/${var.initial_version}"
  }

  default_cache_behavior {
    target_origin_id           = "web"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = "658327ea-f89d-4fab-a63d-7e88639e58f6" # Managed-CachingOptimized
    response_headers_policy_id = aws_cloudfront_response_headers_policy.web.id
  }

  logging_config {
    bucket          = "${var.logs_bucket}.s3.amazonaws.com"
    prefix          = "cloudfront/${var.name}/"
    include_cookies = false
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    acm_certificate_arn      = var.certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }

  # The controller owns the origin path (the live version) and the continuous deployment
  # policy (frontend canaries through a staging distribution).
  lifecycle {
    ignore_changes = [origin, continuous_deployment_policy_id]
  }
}

data "aws_iam_policy_document" "web" {
  statement {
    sid       = "CloudFrontReadsThroughOAC"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.web.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.web.arn]
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.web.arn, "${aws_s3_bucket.web.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "web" {
  bucket = aws_s3_bucket.web.id
  policy = data.aws_iam_policy_document.web.json
}
