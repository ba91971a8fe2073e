"""Health analysis of a release: metric providers measure, `verdict` judges.

`verdict` is pure (no network, no clock); `providers` holds the one small interface every metric
source implements and the registry that picks one by the spec field that is set; `prometheus`,
`cloudwatch` and `http` are the sources. Nothing here decides traffic: that is the planner's job.
"""
