"""Health analysis of a release: metric providers measure, `verdict` judges.

`verdict` is pure (no network, no clock); `base` holds the one small interface every metric source
implements (and which spec field selects it); `prometheus`, `cloudwatch` and `http` are the sources;
`registry` builds them; `providers` measures every metric with its provider and judges the samples. Nothing here decides traffic: that is the planner's job.
"""
