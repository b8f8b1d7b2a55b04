"""Shared CDK building blocks of the foundation's stacks (database, cache, secret, log bucket, data bucket,
Fargate task and service, CloudFront private origin, Python Lambda; listed in docs/architecture.md): each
carries its own cdk-nag acknowledgements, so a stack acknowledges only what is specific to it.

Keeping logical ids: a building block that replaced code in a stack keeps the ids that code had. Its main
resource is the child `Default` of a construct created with the old id (CDK drops `Default` from logical
ids: aws-cdk-lib core/lib/private/uniqueid.ts, HIDDEN_ID), and its companions (parameter group, exported
log groups, subnet group, task definition, log group) are created beside it in the caller's scope under
`<id>Parameters`, `<id>Logs`... as they were. A new logical id would make CloudFormation replace the
resource (a named log group or a cache's subnet group cannot even be replaced in place), see
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html.

This module holds only what every block shares (acknowledgements it can report); import the blocks from
their modules (`from stacks.constructs.database import PostgresDatabase`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from constructs import Construct, IConstruct

from stacks.compliance import acknowledge_all


@dataclass(frozen=True)
class Acknowledgement:
    """One cdk-nag finding a building block acknowledged, where (construct path) and why."""

    path: str
    finding: str
    reason: str


class BuildingBlock(Construct):
    """A construct that records every cdk-nag acknowledgement it makes (`acknowledgements`), so a test
    can prove each one matches a finding that really occurs there, and nothing more is acknowledged."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.acknowledgements: list[Acknowledgement] = []

    def acknowledge(self, target: IConstruct, findings: Mapping[str, str]) -> None:
        """Acknowledge `findings` ({finding: reason}) on `target` and its children, and record them."""
        acknowledge_all(target, dict(findings))
        self.acknowledgements.extend(
            Acknowledgement(target.node.path, finding, reason) for finding, reason in findings.items()
        )
