"""A real local environment for the controller: etcd + kube-apiserver built from Go modules, a moto
server for AWS, Prometheus, and a simulated data plane. Used by `release-controller dev`, by this
project's tests, and by users for their own tests (like controller-runtime's envtest).
"""
