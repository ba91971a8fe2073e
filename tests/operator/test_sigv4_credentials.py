"""Which credentials a SigV4 Prometheus query signs with: the pass's role, else the operator's; none
when the pass's role cannot be told (nothing is signed or sent, as for its AWS calls)."""

from __future__ import annotations

from botocore.credentials import Credentials

from controller.aws import acting
from controller.aws.clients import AwsClients
from controller.operator.app import aws_credentials


def test_the_pass_role_signs_else_the_operator_and_an_unknown_role_nothing() -> None:
    own = AwsClients.for_endpoint("http://127.0.0.1:9")
    role = own.with_credentials(Credentials("ASIAROLE", "role-secret", "role-token"))
    current = aws_credentials(own)
    assert current().get_frozen_credentials().access_key == own.session.get_credentials().access_key
    with acting.scope(acting.Acting("arn:aws:iam::111122223333:role/team-a", role)):
        assert current().get_frozen_credentials().access_key == "ASIAROLE"
    with acting.scope(acting.Acting(None, None, why="two roles")):
        assert current() is None
