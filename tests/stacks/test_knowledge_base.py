"""Knowledge base stack: encrypted buckets, S3 Vectors store, Bedrock KB, chunking, corpus, ingestion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from config import AppConfig
from corpus.reader import CorpusError, corpus_documents, corpus_fingerprint, validate_corpus
from stacks.compliance import apply_cost_tags
from stacks.knowledge_base import (
    NON_FILTERABLE_METADATA_KEYS,
    REPO_ROOT,
    SAMPLE_CORPUS_PREFIX,
    KnowledgeBaseStack,
)
from tests.factories import test_config
from tests.support.cdk import resources_of

CORPUS = REPO_ROOT / "corpus"
INGESTION_HANDLER = "functions.ingestion.handler"
COST_TAGS = {"project", "component", "profile"}


def _synth(config: AppConfig) -> Template:
    """The stack in an app with the cost tags app.py applies."""
    app = cdk.App()
    stack = KnowledgeBaseStack(app, config=config)
    apply_cost_tags(app, config)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def template() -> Template:
    return _synth(test_config("dev"))


@pytest.fixture(scope="module")
def prod_template() -> Template:
    return _synth(test_config("prod"))


@pytest.fixture(scope="module")
def hierarchical_template() -> Template:
    chunking = {"strategy": "hierarchical", "parent_max_tokens": 1200, "child_max_tokens": 200}
    return _synth(test_config("dev", knowledge_base={"chunking": chunking, "dimensions": 512}))


def _only(template: Template, resource_type: str) -> dict[str, Any]:
    found = resources_of(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return dict(next(iter(found.values())))


def _docs_bucket_id(template: Template) -> str:
    for logical_id, resource in resources_of(template, "AWS::S3::Bucket").items():
        rules = resource["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        if rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms":
            return str(logical_id)
    raise AssertionError("no KMS-encrypted bucket")


def _key_id(template: Template) -> str:
    return next(iter(resources_of(template, "AWS::KMS::Key")))


def _function(template: Template, handler: str) -> dict[str, Any]:
    for resource in resources_of(template, "AWS::Lambda::Function").values():
        if resource["Properties"].get("Handler") == f"{INGESTION_HANDLER}.{handler}":
            return dict(resource)
    raise AssertionError(f"no function with handler {handler}")


def _policy_statements_of_role(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for resource in resources_of(template, "AWS::IAM::Policy").values():
        roles = [r["Ref"] for r in resource["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    assert statements, f"no policy attached to {role_prefix}"
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- buckets -------------------------------------------------------------------------------------


def test_docs_bucket_is_encrypted_with_the_customer_key(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": {"Fn::GetAtt": [_key_id(template), "Arn"]},
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            }
        },
    )


def test_customer_key_rotates(template: Template) -> None:
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_every_bucket_is_encrypted(template: Template) -> None:
    for bucket in resources_of(template, "AWS::S3::Bucket").values():
        assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]


def test_no_bucket_is_public(template: Template) -> None:
    buckets = resources_of(template, "AWS::S3::Bucket").values()
    blocked = {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert len(buckets) == 2
    assert all(b["Properties"]["PublicAccessBlockConfiguration"] == blocked for b in buckets)


def test_every_bucket_policy_denies_plain_http(template: Template) -> None:
    policies = resources_of(template, "AWS::S3::BucketPolicy").values()
    assert len(policies) == 2
    for policy in policies:
        assert any(
            s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        )


def test_every_bucket_is_versioned(template: Template) -> None:
    for bucket in resources_of(template, "AWS::S3::Bucket").values():
        assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_docs_bucket_writes_access_logs_to_the_logs_bucket(template: Template) -> None:
    docs = resources_of(template, "AWS::S3::Bucket")[_docs_bucket_id(template)]
    logging = docs["Properties"]["LoggingConfiguration"]
    assert logging["DestinationBucketName"]["Ref"] != _docs_bucket_id(template)
    assert logging["LogFilePrefix"] == "docs-bucket/"


def test_docs_bucket_publishes_events_to_eventbridge(template: Template) -> None:
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {"NotificationConfiguration": {"EventBridgeConfiguration": {}}},
    )


def test_dev_buckets_are_deleted_and_emptied_with_the_stack(template: Template) -> None:
    buckets = template.find_resources("AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Delete"}
    assert len(resources_of(template, "Custom::S3AutoDeleteObjects")) == 2


def test_prod_buckets_are_retained_and_never_emptied(prod_template: Template) -> None:
    buckets = prod_template.find_resources("AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Retain"}
    assert resources_of(prod_template, "Custom::S3AutoDeleteObjects") == {}


def test_prod_vector_store_is_retained(prod_template: Template) -> None:
    for resource_type in ("AWS::S3Vectors::VectorBucket", "AWS::S3Vectors::Index"):
        assert _only(prod_template, resource_type)["DeletionPolicy"] == "Retain"


def test_dev_vector_store_is_deleted(template: Template) -> None:
    for resource_type in ("AWS::S3Vectors::VectorBucket", "AWS::S3Vectors::Index"):
        assert _only(template, resource_type)["DeletionPolicy"] == "Delete"


# --- vector store ----------------------------------------------------------------------------------


def test_vector_bucket_is_encrypted_with_the_customer_key(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3Vectors::VectorBucket",
        {
            "EncryptionConfiguration": {
                "SseType": "aws:kms",
                "KmsKeyArn": {"Fn::GetAtt": [_key_id(template), "Arn"]},
            }
        },
    )


def test_key_lets_s3_vectors_index_in_the_background(template: Template) -> None:
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "indexing.s3vectors.amazonaws.com"},
                                "Action": "kms:Decrypt",
                                "Condition": Match.object_like(
                                    {"StringEquals": {"aws:SourceAccount": Match.any_value()}}
                                ),
                            }
                        )
                    ]
                )
            }
        },
    )


def test_vector_index_uses_configured_dimension_and_cosine(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3Vectors::Index",
        {
            "Dimension": 1024,
            "DistanceMetric": "cosine",
            "DataType": "float32",
            "IndexName": "aaf-support-1024d",
        },
    )


def test_vector_index_declares_bedrock_keys_non_filterable(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3Vectors::Index",
        {"MetadataConfiguration": {"NonFilterableMetadataKeys": list(NON_FILTERABLE_METADATA_KEYS)}},
    )


def test_vector_index_lives_in_the_vector_bucket(template: Template) -> None:
    bucket = next(iter(resources_of(template, "AWS::S3Vectors::VectorBucket")))
    template.has_resource_properties(
        "AWS::S3Vectors::Index", {"VectorBucketArn": {"Fn::GetAtt": [bucket, "VectorBucketArn"]}}
    )


def test_no_opensearch_serverless(template: Template) -> None:
    assert not any(
        r["Type"].startswith("AWS::OpenSearchServerless") for r in template.to_json()["Resources"].values()
    )


# --- knowledge base and data source -------------------------------------------------------------


def test_knowledge_base_stores_vectors_in_the_s3_vectors_index(template: Template) -> None:
    index = next(iter(resources_of(template, "AWS::S3Vectors::Index")))
    template.has_resource_properties(
        "AWS::Bedrock::KnowledgeBase",
        {
            "StorageConfiguration": {
                "Type": "S3_VECTORS",
                "S3VectorsConfiguration": {"IndexArn": {"Fn::GetAtt": [index, "IndexArn"]}},
            }
        },
    )


def test_knowledge_base_embeds_with_titan_v2_at_configured_dimensions(template: Template) -> None:
    config = _only(template, "AWS::Bedrock::KnowledgeBase")["Properties"]["KnowledgeBaseConfiguration"]
    vector = config["VectorKnowledgeBaseConfiguration"]
    assert config["Type"] == "VECTOR"
    assert "foundation-model/amazon.titan-embed-text-v2:0" in json.dumps(vector["EmbeddingModelArn"])
    assert vector["EmbeddingModelConfiguration"]["BedrockEmbeddingModelConfiguration"]["Dimensions"] == 1024


def test_configured_dimensions_reach_index_and_knowledge_base(hierarchical_template: Template) -> None:
    index = _only(hierarchical_template, "AWS::S3Vectors::Index")["Properties"]
    kb = _only(hierarchical_template, "AWS::Bedrock::KnowledgeBase")["Properties"]
    embedding = kb["KnowledgeBaseConfiguration"]["VectorKnowledgeBaseConfiguration"][
        "EmbeddingModelConfiguration"
    ]
    assert (index["Dimension"], index["IndexName"], kb["Name"]) == (
        512,
        "aaf-support-512d",
        "aaf-support-512d",
    )
    assert embedding["BedrockEmbeddingModelConfiguration"]["Dimensions"] == 512


def test_knowledge_base_waits_for_its_role_policy(template: Template) -> None:
    kb = _only(template, "AWS::Bedrock::KnowledgeBase")
    assert any(d.startswith("KnowledgeBaseRoleDefaultPolicy") for d in kb["DependsOn"])


def test_knowledge_base_role_trusts_only_bedrock_of_this_account(template: Template) -> None:
    role = next(
        r for k, r in resources_of(template, "AWS::IAM::Role").items() if k.startswith("KnowledgeBaseRole")
    )
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
    assert ":knowledge-base/*" in json.dumps(statement["Condition"]["ArnLike"])


def test_knowledge_base_role_is_least_privilege(template: Template) -> None:
    statements = _policy_statements_of_role(template, "KnowledgeBaseRole")
    actions = sorted(a for s in statements for a in _as_list(s["Action"]))
    assert actions == sorted(
        [
            "bedrock:InvokeModel",
            "s3:ListBucket",
            "s3:GetObject",
            "s3vectors:GetIndex",
            "s3vectors:QueryVectors",
            "s3vectors:PutVectors",
            "s3vectors:GetVectors",
            "s3vectors:DeleteVectors",
            "s3vectors:ListVectors",
            "kms:Decrypt",
            "kms:GenerateDataKey",
        ]
    )
    assert all(r != "*" for s in statements for r in _as_list(s["Resource"]))


def test_knowledge_base_role_reaches_only_the_index_and_embedding_model(template: Template) -> None:
    role_statements = _policy_statements_of_role(template, "KnowledgeBaseRole")
    statements = {json.dumps(sorted(_as_list(s["Action"]))): s["Resource"] for s in role_statements}
    index = next(iter(resources_of(template, "AWS::S3Vectors::Index")))
    vector_actions = next(k for k in statements if "s3vectors" in k)
    assert statements[vector_actions] == {"Fn::GetAtt": [index, "IndexArn"]}
    assert "foundation-model/amazon.titan-embed-text-v2:0" in json.dumps(
        statements['["bedrock:InvokeModel"]']
    )


def test_data_source_reads_the_docs_bucket(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Bedrock::DataSource",
        {
            "DataSourceConfiguration": {
                "Type": "S3",
                "S3Configuration": {"BucketArn": {"Fn::GetAtt": [_docs_bucket_id(template), "Arn"]}},
            },
            "KnowledgeBaseId": {"Fn::GetAtt": ["KnowledgeBase", "KnowledgeBaseId"]},
            "ServerSideEncryptionConfiguration": {"KmsKeyArn": {"Fn::GetAtt": [_key_id(template), "Arn"]}},
        },
    )


def test_fixed_size_chunking_follows_config(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Bedrock::DataSource",
        {
            "VectorIngestionConfiguration": {
                "ChunkingConfiguration": {
                    "ChunkingStrategy": "FIXED_SIZE",
                    "FixedSizeChunkingConfiguration": {"MaxTokens": 300, "OverlapPercentage": 20},
                }
            }
        },
    )


def test_hierarchical_chunking_follows_config(hierarchical_template: Template) -> None:
    hierarchical_template.has_resource_properties(
        "AWS::Bedrock::DataSource",
        {
            "VectorIngestionConfiguration": {
                "ChunkingConfiguration": {
                    "ChunkingStrategy": "HIERARCHICAL",
                    "HierarchicalChunkingConfiguration": {
                        "LevelConfigurations": [{"MaxTokens": 1200}, {"MaxTokens": 200}],
                        "OverlapTokens": 40,  # 20 % of the child chunk
                    },
                }
            }
        },
    )


def test_semantic_chunking_follows_config() -> None:
    template = _synth(
        test_config("dev", knowledge_base={"chunking": {"strategy": "semantic", "max_tokens": 500}})
    )
    template.has_resource_properties(
        "AWS::Bedrock::DataSource",
        {
            "VectorIngestionConfiguration": {
                "ChunkingConfiguration": {
                    "ChunkingStrategy": "SEMANTIC",
                    "SemanticChunkingConfiguration": {
                        "MaxTokens": 500,
                        "BufferSize": 0,
                        "BreakpointPercentileThreshold": 95,
                    },
                }
            }
        },
    )


def test_no_chunking_keeps_each_document_whole() -> None:
    template = _synth(test_config("dev", knowledge_base={"chunking": {"strategy": "none"}}))
    template.has_resource_properties(
        "AWS::Bedrock::DataSource",
        {"VectorIngestionConfiguration": {"ChunkingConfiguration": {"ChunkingStrategy": "NONE"}}},
    )


def test_new_chunking_gives_the_data_source_a_new_name(
    template: Template, hierarchical_template: Template
) -> None:
    # Chunking is create-only: the replacement data source must not collide with the old name.
    fixed = _only(template, "AWS::Bedrock::DataSource")["Properties"]["Name"]
    hierarchical = _only(hierarchical_template, "AWS::Bedrock::DataSource")["Properties"]["Name"]
    assert fixed.startswith("aaf-docs-fixed-size-") and hierarchical.startswith("aaf-docs-hierarchical-")


def test_deleting_the_data_source_deletes_its_vectors(template: Template) -> None:
    template.has_resource_properties("AWS::Bedrock::DataSource", {"DataDeletionPolicy": "DELETE"})


# --- sample corpus -----------------------------------------------------------------------------


def test_sample_corpus_is_deployed_under_its_own_prefix(template: Template) -> None:
    template.has_resource_properties(
        "Custom::CDKBucketDeployment",
        {
            "DestinationBucketName": {"Ref": _docs_bucket_id(template)},
            "DestinationBucketKeyPrefix": SAMPLE_CORPUS_PREFIX,
            "Prune": True,
        },
    )


def test_corpus_upload_waits_for_the_change_rule(template: Template) -> None:
    deployment = _only(template, "Custom::CDKBucketDeployment")
    assert any(d.startswith("DocumentChangedRule") for d in deployment["DependsOn"])


def test_sample_corpus_can_be_left_out() -> None:
    template = _synth(test_config("dev", knowledge_base={"deploy_sample_corpus": False}))
    assert resources_of(template, "Custom::CDKBucketDeployment") == {}
    template.has_resource_properties("Custom::KnowledgeBaseIngestion", {"CorpusFingerprint": "none"})


def test_corpus_upload_excludes_readme_and_build_script() -> None:
    names = {path.name for path in corpus_documents(CORPUS)}
    assert not names & {"README.md", "build_pdf.py", "__init__.py"}
    assert "router-x200-user-manual.pdf" in names and "router-x200-user-manual.pdf.metadata.json" in names


def test_staged_corpus_asset_holds_exactly_the_documents_and_sidecars(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    KnowledgeBaseStack(app, config=test_config("dev"))
    app.synth()
    (staged,) = [d for d in tmp_path.glob("asset.*") if (d / "router-x200-user-manual.pdf").exists()]
    uploaded = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
    assert uploaded == sorted(p.relative_to(CORPUS).as_posix() for p in corpus_documents(CORPUS))


def test_sample_corpus_is_valid() -> None:
    files = validate_corpus(CORPUS)
    documents = [f for f in files if not f.name.endswith(".metadata.json")]
    assert len(documents) >= 5 and len(files) == 2 * len(documents)


def test_fingerprint_changes_when_a_document_changes(tmp_path: Path) -> None:
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS, copy)
    before = corpus_fingerprint(copy)
    (copy / "mesh-m3-troubleshooting.md").write_text("# changed\n", encoding="utf-8")
    assert corpus_fingerprint(copy) != before


def test_fingerprint_ignores_the_readme(tmp_path: Path) -> None:
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS, copy)
    before = corpus_fingerprint(copy)
    (copy / "README.md").write_text("edited\n", encoding="utf-8")
    assert corpus_fingerprint(copy) == before


def test_missing_corpus_dir_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"'knowledge_base.corpus_dir'.*does not exist"):
        validate_corpus(tmp_path / "nowhere")


def test_empty_corpus_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("only a readme\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="holds no documents"):
        validate_corpus(tmp_path)


def test_unsupported_document_type_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "diagram.png").write_bytes(b"\x89PNG")
    with pytest.raises(CorpusError, match=r"diagram\.png: type \.png is not supported"):
        validate_corpus(tmp_path)


def test_empty_document_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"empty\.md is empty"):
        validate_corpus(tmp_path)


def test_malformed_sidecar_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("# Guide\n", encoding="utf-8")
    (tmp_path / "guide.md.metadata.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"guide\.md\.metadata\.json is not valid JSON"):
        validate_corpus(tmp_path)


def test_sidecar_without_attributes_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("# Guide\n", encoding="utf-8")
    (tmp_path / "guide.md.metadata.json").write_text('{"title": "Guide"}', encoding="utf-8")
    with pytest.raises(CorpusError, match="non-empty 'metadataAttributes' object"):
        validate_corpus(tmp_path)


def test_sidecar_attribute_of_wrong_type_names_the_attribute(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("# Guide\n", encoding="utf-8")
    body = {"metadataAttributes": {"product": {"nested": "object"}}}
    (tmp_path / "guide.md.metadata.json").write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(CorpusError, match="attribute 'product' must be a string"):
        validate_corpus(tmp_path)


def test_orphan_sidecar_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("# Guide\n", encoding="utf-8")
    (tmp_path / "gone.pdf.metadata.json").write_text('{"metadataAttributes": {"a": "b"}}', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"without its document gone\.pdf"):
        validate_corpus(tmp_path)


# --- automatic ingestion -------------------------------------------------------------------------


def test_deployment_starts_ingestion_with_corpus_fingerprint(template: Template) -> None:
    template.has_resource_properties(
        "Custom::KnowledgeBaseIngestion",
        {
            "KnowledgeBaseId": {"Fn::GetAtt": ["KnowledgeBase", "KnowledgeBaseId"]},
            "DataSourceId": {"Fn::GetAtt": ["DocsDataSource", "DataSourceId"]},
            "CorpusFingerprint": corpus_fingerprint(CORPUS),
        },
    )


def test_deploy_ingestion_runs_after_the_corpus_upload(template: Template) -> None:
    resource = _only(template, "Custom::KnowledgeBaseIngestion")
    deployment = next(iter(resources_of(template, "Custom::CDKBucketDeployment")))
    assert deployment in resource["DependsOn"]


def test_deploy_ingestion_provider_calls_the_deploy_handler(template: Template) -> None:
    function = _function(template, "handle_deploy")
    assert function["Properties"]["Timeout"] == 600


def test_document_change_rule_matches_created_and_deleted_objects_in_docs_bucket(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created", "Object Deleted"],
                "detail": {"bucket": {"name": [{"Ref": _docs_bucket_id(template)}]}},
            },
            "State": "ENABLED",
        },
    )


def test_document_change_rule_targets_the_ingestion_function_with_dead_letters(template: Template) -> None:
    rule = _only(template, "AWS::Events::Rule")
    (target,) = rule["Properties"]["Targets"]
    function_id = target["Arn"]["Fn::GetAtt"][0]
    assert resources_of(template, "AWS::Lambda::Function")[function_id]["Properties"]["Handler"] == (
        f"{INGESTION_HANDLER}.handle_document_change"
    )
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("IngestionDeadLetterQueue")


def test_change_function_runs_one_at_a_time(template: Template) -> None:
    function = _function(template, "handle_document_change")
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1


def test_change_function_has_a_dead_letter_queue(template: Template) -> None:
    function = _function(template, "handle_document_change")
    assert function["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0].startswith(
        "IngestionDeadLetterQueue"
    )


def test_change_function_retries_failed_events(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600}
    )


def test_dead_letter_queue_is_encrypted_and_ssl_only(template: Template) -> None:
    queue = _only(template, "AWS::SQS::Queue")["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [_key_id(template), "Arn"]}
    policy = _only(template, "AWS::SQS::QueuePolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in policy)


def test_change_function_knows_its_knowledge_base_data_source_and_bucket(template: Template) -> None:
    variables = _function(template, "handle_document_change")["Properties"]["Environment"]["Variables"]
    assert variables == {
        "KNOWLEDGE_BASE_ID": {"Fn::GetAtt": ["KnowledgeBase", "KnowledgeBaseId"]},
        "DATA_SOURCE_ID": {"Fn::GetAtt": ["DocsDataSource", "DataSourceId"]},
        "DOCS_BUCKET": {"Ref": _docs_bucket_id(template)},
    }


def test_ingestion_functions_may_only_manage_ingestion_jobs_of_this_knowledge_base(
    template: Template,
) -> None:
    for role in ("IngestOnDocumentChangeRole", "IngestOnDeployRole"):
        bedrock = [
            s for s in _policy_statements_of_role(template, role) if "bedrock:" in json.dumps(s["Action"])
        ]
        assert bedrock == [
            {
                "Action": [
                    "bedrock:StartIngestionJob",
                    "bedrock:ListIngestionJobs",
                    "bedrock:GetIngestionJob",
                ],
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": ["KnowledgeBase", "KnowledgeBaseArn"]},
            }
        ]


def test_ingestion_functions_use_no_managed_policies(template: Template) -> None:
    for logical_id, role in resources_of(template, "AWS::IAM::Role").items():
        if logical_id.startswith(("IngestOnDocumentChangeRole", "IngestOnDeployRole")):
            assert "ManagedPolicyArns" not in role["Properties"]


def test_ingestion_function_logs_are_encrypted_with_bounded_retention(template: Template) -> None:
    function = _function(template, "handle_document_change")
    group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    group = resources_of(template, "AWS::Logs::LogGroup")[group_id]["Properties"]
    assert group["RetentionInDays"] == 14 and "KmsKeyId" in group


# --- tags and outputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource_type",
    [
        "AWS::Bedrock::KnowledgeBase",
        "AWS::S3Vectors::VectorBucket",
        "AWS::S3Vectors::Index",
        "AWS::S3::Bucket",
    ],
)
def test_cost_allocation_tags_are_present(template: Template, resource_type: str) -> None:
    for resource in resources_of(template, resource_type).values():
        tags = resource["Properties"]["Tags"]
        keys = set(tags) if isinstance(tags, dict) else {t["Key"] for t in tags}
        assert keys >= COST_TAGS


def test_outputs_name_knowledge_base_and_bucket(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    assert {"KnowledgeBaseId", "DataSourceId", "DocsBucketName"} <= set(outputs)
