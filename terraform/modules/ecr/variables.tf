variable "repositories" {
  description = "Repository names, e.g. [\"pratiko-backend\", \"release-controller\"]."
  type        = list(string)
}

variable "keep_images" {
  description = "How many images each repository keeps."
  type        = number
  default     = 50
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the images."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
