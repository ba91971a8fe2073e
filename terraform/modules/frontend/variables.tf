variable "name" {
  description = "Name prefix, e.g. pratiko-production."
  type        = string
}

variable "bucket_name" {
  description = "Bucket holding every frontend version under releases/VERSION/."
  type        = string
}

variable "initial_version" {
  description = "Version the distribution serves when first created; Releases change it."
  type        = string
}

variable "aliases" {
  description = "Domain names of the distribution."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate (us-east-1) for the aliases."
  type        = string
}

variable "web_acl_arn" {
  description = "WAFv2 web ACL (CLOUDFRONT scope) in front of the distribution."
  type        = string
}

variable "price_class" {
  description = "CloudFront price class."
  type        = string
  default     = "PriceClass_100"
}

variable "logs_bucket" {
  description = "Bucket (name) receiving S3 and CloudFront access logs."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
