variable "releases" {
  description = "Releases whose flags live in SSM, keyed by any stable id: {namespace, name, initial_flags}."
  type = map(object({
    namespace     = string
    name          = string
    initial_flags = map(bool)
  }))
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
