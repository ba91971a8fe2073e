output "bucket_name" {
  description = "The frontend bucket (CI uploads releases/VERSION/ here)."
  value       = aws_s3_bucket.web.id
}

output "bucket_arn" {
  description = "ARN of the frontend bucket."
  value       = aws_s3_bucket.web.arn
}

output "distribution_id" {
  description = "spec.frontend.cloudfront.distributionId"
  value       = aws_cloudfront_distribution.web.id
}

output "distribution_arn" {
  description = "ARN of the distribution."
  value       = aws_cloudfront_distribution.web.arn
}

output "distribution_domain_name" {
  description = "CloudFront domain name of the distribution."
  value       = aws_cloudfront_distribution.web.domain_name
}

output "origin_id" {
  description = "spec.frontend.cloudfront.originId"
  value       = "web"
}
