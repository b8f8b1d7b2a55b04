"""Helpers for stack tests: synthesize one stack of a fresh app into a Template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import aws_cdk as cdk
from aws_cdk import aws_bedrock as bedrock
from aws_cdk.assertions import Template
from constructs import Construct

from config import AppConfig

StackT = TypeVar("StackT", bound=cdk.Stack)


def build_stack(factory: Callable[..., StackT], config: AppConfig, **inputs: Any) -> tuple[StackT, Template]:
    """Create `factory(app, config=config, **inputs)` in a new App and return it with its template."""
    app = cdk.App()
    stack = factory(app, config=config, **inputs)
    return stack, Template.from_stack(stack)


def resources_of(template: Template, resource_type: str) -> dict[str, Any]:
    """Logical id -> resource body for every resource of one type."""
    return dict(template.find_resources(resource_type))


def standin_knowledge_base(scope: Construct, index_arn: str) -> bedrock.CfnKnowledgeBase:
    """A minimal S3 Vectors knowledge base for stack tests that consume one (not the real KB stack)."""
    return bedrock.CfnKnowledgeBase(
        scope,
        "KnowledgeBase",
        name="kb",
        role_arn="arn:aws:iam::123456789012:role/kb",
        knowledge_base_configuration=bedrock.CfnKnowledgeBase.KnowledgeBaseConfigurationProperty(
            type="VECTOR",
            vector_knowledge_base_configuration=bedrock.CfnKnowledgeBase.VectorKnowledgeBaseConfigurationProperty(
                embedding_model_arn="arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
            ),
        ),
        storage_configuration=bedrock.CfnKnowledgeBase.StorageConfigurationProperty(
            type="S3_VECTORS",
            s3_vectors_configuration=bedrock.CfnKnowledgeBase.S3VectorsConfigurationProperty(
                index_arn=index_arn
            ),
        ),
    )
