"""The AWS layer: one client factory, one observer, effectors per surface (ecs, alb, cloudfront, flags).

Only this package talks to AWS. The planner sees `Observation` values and returns `Action` values;
`Observer` produces the former and `apply`/`Effector` executes the latter.
"""

from controller.aws.apply import Effector, apply, effector_for
from controller.aws.clients import AwsClients
from controller.aws.errors import AwsEffectError
from controller.aws.observe import Observer, TaskDefinitionCache, observe

__all__ = [
    "AwsClients", "AwsEffectError", "Effector", "Observer", "TaskDefinitionCache", "apply", "effector_for", "observe",
]
