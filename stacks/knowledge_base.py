"""Knowledge base: docs bucket, S3 Vectors store, Bedrock Knowledge Base, data source, ingestion.

Documents get in two ways: the sample corpus (`corpus/`) is deployed under `sample-corpus/` by a
BucketDeployment, and anyone with write access can put documents anywhere else in the docs bucket.
Ingestion starts by itself: a custom resource starts a job on every deployment that changes the corpus
or the data source, and an EventBridge rule on the bucket starts one whenever an object is created or
deleted (functions/ingestion). No OpenSearch Serverless: vectors live in S3 Vectors.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import aws_s3vectors as s3vectors
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from config import AppConfig
from config.foundation import ChunkingConfig
from corpus.reader import corpus_fingerprint, validate_corpus
from stacks.base import FoundationStack
from stacks.compliance import (
    CDK_HELPER_ACKNOWLEDGEMENTS,
    acknowledge,
    acknowledge_all,
    acknowledge_cdk_helpers,
    nag_region_and_account,
)
from stacks.constructs.log_bucket import LogBucket
from stacks.constructs.packaging import Bundle, bundling_options
from stacks.constructs.python_lambda import PythonLambda

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CORPUS_PREFIX = "sample-corpus/"
# Bedrock stores the chunk text and its own bookkeeping under these keys; they exceed the 2 KB of
# filterable metadata S3 Vectors allows per vector, so the index must declare them non-filterable.
NON_FILTERABLE_METADATA_KEYS = ("AMAZON_BEDROCK_TEXT", "AMAZON_BEDROCK_METADATA")
# S3 server access logs of the docs bucket: kept a year (diagnostics of who read or changed documents).
ACCESS_LOG_DAYS = 365
SEMANTIC_BUFFER_SIZE = 0  # Bedrock's defaults for the settings ChunkingConfig does not expose
SEMANTIC_BREAKPOINT_PERCENTILE = 95


def corpus_source(directory: Path) -> s3deploy.ISource:
    """The BucketDeployment source: exactly the files `corpus.reader.validate_corpus` accepts (documents
    and sidecars), bundled by `stacks.constructs.packaging`, so the upload and the local consumers
    (tools/local_index.py, eval/dataset.py) cannot disagree about what the corpus is.

    Raises:
        CorpusError: the corpus has an unsupported, empty or oversized file or a malformed sidecar.
    """
    files = validate_corpus(directory)
    bundle = Bundle.of(renamed={p.relative_to(directory).as_posix(): str(p) for p in files})
    return s3deploy.Source.asset(
        str(directory),
        asset_hash=bundle.fingerprint(),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=bundling_options(bundle),
    )


def chunking_configuration(chunking: ChunkingConfig) -> bedrock.CfnDataSource.ChunkingConfigurationProperty:
    """The data source's chunking strategy from the config (`knowledge_base.chunking`)."""
    if chunking.strategy == "fixed_size":
        return bedrock.CfnDataSource.ChunkingConfigurationProperty(
            chunking_strategy="FIXED_SIZE",
            fixed_size_chunking_configuration=bedrock.CfnDataSource.FixedSizeChunkingConfigurationProperty(
                max_tokens=chunking.max_tokens, overlap_percentage=chunking.overlap_percentage
            ),
        )
    if chunking.strategy == "hierarchical":
        # Overlap is expressed as a share of the child chunk, like fixed-size chunking's percentage.
        overlap = max(1, round(chunking.child_max_tokens * chunking.overlap_percentage / 100))
        return bedrock.CfnDataSource.ChunkingConfigurationProperty(
            chunking_strategy="HIERARCHICAL",
            hierarchical_chunking_configuration=bedrock.CfnDataSource.HierarchicalChunkingConfigurationProperty(
                level_configurations=[
                    bedrock.CfnDataSource.HierarchicalChunkingLevelConfigurationProperty(
                        max_tokens=chunking.parent_max_tokens
                    ),
                    bedrock.CfnDataSource.HierarchicalChunkingLevelConfigurationProperty(
                        max_tokens=chunking.child_max_tokens
                    ),
                ],
                overlap_tokens=overlap,
            ),
        )
    if chunking.strategy == "semantic":
        return bedrock.CfnDataSource.ChunkingConfigurationProperty(
            chunking_strategy="SEMANTIC",
            semantic_chunking_configuration=bedrock.CfnDataSource.SemanticChunkingConfigurationProperty(
                max_tokens=chunking.max_tokens,
                buffer_size=SEMANTIC_BUFFER_SIZE,
                breakpoint_percentile_threshold=SEMANTIC_BREAKPOINT_PERCENTILE,
            ),
        )
    return bedrock.CfnDataSource.ChunkingConfigurationProperty(chunking_strategy="NONE")


class KnowledgeBaseStack(FoundationStack):
    """Support documents in S3, embedded with Titan v2 into S3 Vectors, ingested automatically."""

    component = "knowledge-base"
    description_text = "knowledge base (docs bucket, S3 Vectors, Bedrock KB, automatic ingestion)"

    def __init__(self, scope: Construct, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, config=config, **kwargs)
        # Deliver server access logs through a bucket policy instead of the legacy ACL (ACLs stay off).
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.corpus_dir = REPO_ROOT / config.knowledge_base.corpus_dir
        self.key = self._create_key()
        self.access_logs_bucket = self._create_access_logs_bucket()
        self.docs_bucket = self._create_docs_bucket()
        self.vector_bucket, self.vector_index = self._create_vector_store()
        self.role = self._create_knowledge_base_role()
        self.knowledge_base = self._create_knowledge_base()
        self.data_source = self._create_data_source()
        self.dead_letter_queue = self._create_dead_letter_queue()
        self.change_rule, self.change_function = self._create_ingestion_on_change()
        self.corpus_deployment = self._deploy_sample_corpus()
        self.deploy_ingestion = self._create_ingestion_on_deploy()
        self._create_outputs()
        self._acknowledge_findings()

    @property
    def knowledge_base_id(self) -> str:
        return self.knowledge_base.attr_knowledge_base_id

    @property
    def knowledge_base_arn(self) -> str:
        return self.knowledge_base.attr_knowledge_base_arn

    def grant_retrieve(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` query the knowledge base (Retrieve; RetrieveAndGenerate for convenience).

        Args:
            grantee: the role of the agent runtime or tool that searches the documents.
        """
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["bedrock:Retrieve", "bedrock:RetrieveAndGenerate"],
            resource_arns=[self.knowledge_base_arn],
        )

    # --- encryption and buckets -------------------------------------------------------------------

    def _create_key(self) -> kms.Key:
        key = self.create_data_key("KnowledgeBaseKey", "knowledge base documents, vectors and queues")
        # S3 Vectors maintains indexes in the background with its own principal (see AWS docs
        # "Data protection and encryption in S3 Vectors"); scoped to this account's vector buckets.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowS3VectorsIndexing",
                principals=[iam.ServicePrincipal("indexing.s3vectors.amazonaws.com")],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{self.partition}:s3vectors:{self.region}:{self.account}:bucket/*"
                    },
                    "ForAnyValue:StringEquals": {
                        "kms:EncryptionContextKeys": ["aws:s3vectors:arn", "aws:s3vectors:resource-id"]
                    },
                },
            )
        )
        # EventBridge puts undeliverable document events into the (encrypted) dead-letter queue.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        return key

    def _bucket_lifecycle(self) -> dict[str, Any]:
        retain = self.config.retain_data
        return {
            "removal_policy": self.removal_policy,
            "auto_delete_objects": not retain,
            "enforce_ssl": True,
            "minimum_tls_version": 1.2,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "versioned": True,
        }

    def _create_access_logs_bucket(self) -> LogBucket:
        return LogBucket(
            self,
            "AccessLogsBucket",
            expire_days=ACCESS_LOG_DAYS,
            retain=self.config.retain_data,
            minimum_tls_version=1.2,
        )

    def _create_docs_bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "DocsBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            server_access_logs_bucket=self.access_logs_bucket.bucket,
            server_access_logs_prefix="docs-bucket/",
            event_bridge_enabled=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions", noncurrent_version_expiration=cdk.Duration.days(90)
                )
            ],
            **self._bucket_lifecycle(),
        )

    # --- vector store and knowledge base ----------------------------------------------------------

    def _create_vector_store(self) -> tuple[s3vectors.CfnVectorBucket, s3vectors.CfnIndex]:
        dimensions = self.config.knowledge_base.dimensions
        bucket = s3vectors.CfnVectorBucket(
            self,
            "VectorBucket",
            encryption_configuration=s3vectors.CfnVectorBucket.EncryptionConfigurationProperty(
                sse_type="aws:kms", kms_key_arn=self.key.key_arn
            ),
        )
        bucket.apply_removal_policy(self.removal_policy)
        # Dimension, metric and metadata keys are create-only: the name carries the dimension so that a
        # new dimension creates a new index instead of colliding with the old name.
        index = s3vectors.CfnIndex(
            self,
            "VectorIndex",
            vector_bucket_arn=bucket.attr_vector_bucket_arn,
            index_name=f"{self.config.prefix}-support-{dimensions}d",
            data_type="float32",
            dimension=dimensions,
            distance_metric="cosine",
            metadata_configuration=s3vectors.CfnIndex.MetadataConfigurationProperty(
                non_filterable_metadata_keys=list(NON_FILTERABLE_METADATA_KEYS)
            ),
        )
        index.apply_removal_policy(self.removal_policy)
        return bucket, index

    @property
    def embedding_model_arn(self) -> str:
        model = self.config.knowledge_base.embedding_model_id
        return f"arn:{self.partition}:bedrock:{self.region}::foundation-model/{model}"

    def _create_knowledge_base_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "KnowledgeBaseRole",
            description="Bedrock Knowledge Base: read the docs bucket, embed with Titan, write S3 Vectors",
            assumed_by=iam.ServicePrincipal(
                "bedrock.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{self.partition}:bedrock:{self.region}:{self.account}:knowledge-base/*"
                    },
                },
            ),
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["bedrock:InvokeModel"], resources=[self.embedding_model_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.docs_bucket.bucket_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.docs_bucket.arn_for_objects("*")])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "s3vectors:GetIndex",
                    "s3vectors:QueryVectors",
                    "s3vectors:PutVectors",
                    "s3vectors:GetVectors",
                    "s3vectors:DeleteVectors",
                    "s3vectors:ListVectors",
                ],
                resources=[self.vector_index.attr_index_arn],
            )
        )
        # Decrypt documents (SSE-KMS), and encrypt/decrypt vectors and transient ingestion data.
        role.add_to_policy(
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key.key_arn])
        )
        return role

    def _create_knowledge_base(self) -> bedrock.CfnKnowledgeBase:
        kb_config = self.config.knowledge_base
        knowledge_base = bedrock.CfnKnowledgeBase(
            self,
            "KnowledgeBase",
            name=f"{self.config.prefix}-support-{kb_config.dimensions}d",
            description="Product support documents (manuals, troubleshooting, policies, FAQs)",
            role_arn=self.role.role_arn,
            knowledge_base_configuration=bedrock.CfnKnowledgeBase.KnowledgeBaseConfigurationProperty(
                type="VECTOR",
                vector_knowledge_base_configuration=bedrock.CfnKnowledgeBase.VectorKnowledgeBaseConfigurationProperty(
                    embedding_model_arn=self.embedding_model_arn,
                    embedding_model_configuration=bedrock.CfnKnowledgeBase.EmbeddingModelConfigurationProperty(
                        bedrock_embedding_model_configuration=bedrock.CfnKnowledgeBase.BedrockEmbeddingModelConfigurationProperty(
                            dimensions=kb_config.dimensions, embedding_data_type="FLOAT32"
                        )
                    ),
                ),
            ),
            storage_configuration=bedrock.CfnKnowledgeBase.StorageConfigurationProperty(
                type="S3_VECTORS",
                s3_vectors_configuration=bedrock.CfnKnowledgeBase.S3VectorsConfigurationProperty(
                    index_arn=self.vector_index.attr_index_arn
                ),
            ),
        )
        # Bedrock validates its access to the index at creation: the role's policy must exist first.
        default_policy = self.role.node.find_child("DefaultPolicy")
        knowledge_base.node.add_dependency(default_policy)
        return knowledge_base

    def _create_data_source(self) -> bedrock.CfnDataSource:
        chunking = self.config.knowledge_base.chunking
        # Chunking is create-only, so a new strategy replaces the data source; the name must differ.
        chunking_hash = hashlib.sha256(chunking.model_dump_json().encode("utf-8")).hexdigest()[:8]
        return bedrock.CfnDataSource(
            self,
            "DocsDataSource",
            knowledge_base_id=self.knowledge_base.attr_knowledge_base_id,
            name=f"{self.config.prefix}-docs-{chunking.strategy.replace('_', '-')}-{chunking_hash}",
            description="Every document in the docs bucket (the sample corpus lives under sample-corpus/)",
            # Deleting the data source (e.g. on a chunking change) removes its vectors from the index.
            data_deletion_policy="DELETE",
            data_source_configuration=bedrock.CfnDataSource.DataSourceConfigurationProperty(
                type="S3",
                s3_configuration=bedrock.CfnDataSource.S3DataSourceConfigurationProperty(
                    bucket_arn=self.docs_bucket.bucket_arn
                ),
            ),
            server_side_encryption_configuration=bedrock.CfnDataSource.ServerSideEncryptionConfigurationProperty(
                kms_key_arn=self.key.key_arn
            ),
            vector_ingestion_configuration=bedrock.CfnDataSource.VectorIngestionConfigurationProperty(
                chunking_configuration=chunking_configuration(chunking)
            ),
        )

    # --- automatic ingestion ----------------------------------------------------------------------

    def _create_dead_letter_queue(self) -> sqs.Queue:
        return sqs.Queue(
            self,
            "IngestionDeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            removal_policy=self.removal_policy,
        )

    def _ingestion_function(
        self, construct_id: str, handler: str, description: str, timeout: int, synchronous_caller: str | None
    ) -> lambda_.Function:
        built = PythonLambda(
            self,
            construct_id,
            function="ingestion",
            handler=handler,
            description=description,
            key=self.key,
            log_retention_days=self._log_retention_days,
            removal_policy=self.removal_policy,
            timeout=cdk.Duration.seconds(timeout),
            # One invocation at a time: Bedrock runs one ingestion job per data source anyway.
            reserved_concurrency=1,
            environment={
                "KNOWLEDGE_BASE_ID": self.knowledge_base_id,
                "DATA_SOURCE_ID": self.data_source.attr_data_source_id,
                "DOCS_BUCKET": self.docs_bucket.bucket_name,
            },
            encrypt_environment=True,
            outside_vpc_reason="The function only calls the Bedrock control-plane API (start/list ingestion "
            "jobs) and never touches document content; a VPC would add NAT or endpoint cost and protect nothing.",
            synchronous_caller=synchronous_caller,
            role_description=f"{construct_id}: start and list ingestion jobs of the knowledge base",
        )
        built.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["bedrock:StartIngestionJob", "bedrock:ListIngestionJobs", "bedrock:GetIngestionJob"],
                resources=[self.knowledge_base_arn],
            )
        )
        return built.function

    @property
    def _log_retention_days(self) -> int:
        return 365 if self.config.retain_data else 14

    def _create_ingestion_on_change(self) -> tuple[events.Rule, lambda_.Function]:
        function = self._ingestion_function(
            "IngestOnDocumentChange",
            "handle_document_change",
            "Starts a knowledge base ingestion job when a document changes in the docs bucket",
            timeout=300,
            synchronous_caller=None,  # EventBridge invokes it asynchronously; failures go to the DLQ
        )
        # Lambda retries failed asynchronous events twice, then keeps them in the dead-letter queue;
        # throttled events (one at a time) wait in Lambda's queue for up to six hours.
        function.configure_async_invoke(retry_attempts=2, max_event_age=cdk.Duration.hours(6))
        cfn_function = function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(
            target_arn=self.dead_letter_queue.queue_arn
        )
        # Lambda delivers dead letters with the function's role; the queue is encrypted with our key.
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn])
        )
        rule = events.Rule(
            self,
            "DocumentChangedRule",
            description="Documents created or deleted in the knowledge base docs bucket",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created", "Object Deleted"],
                detail={"bucket": {"name": [self.docs_bucket.bucket_name]}},
            ),
            targets=[
                targets.LambdaFunction(
                    function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=8,
                    max_event_age=cdk.Duration.hours(6),
                )
            ],
        )
        return rule, function

    def _deploy_sample_corpus(self) -> s3deploy.BucketDeployment | None:
        if not self.config.knowledge_base.deploy_sample_corpus:
            return None
        deployment = s3deploy.BucketDeployment(
            self,
            "SampleCorpus",
            sources=[corpus_source(self.corpus_dir)],
            destination_bucket=self.docs_bucket,
            # Pruning only touches this prefix: documents added elsewhere in the bucket stay.
            destination_key_prefix=SAMPLE_CORPUS_PREFIX,
            prune=True,
            memory_limit=256,
            log_group=self.create_log_group(
                "SampleCorpusLogs", retention_days=self._log_retention_days, key=self.key
            ),
        )
        # The change rule must exist before the upload so the upload itself triggers ingestion.
        deployment.node.add_dependency(self.change_rule)
        return deployment

    def _create_ingestion_on_deploy(self) -> cdk.CustomResource:
        function = self.deploy_function = self._ingestion_function(
            "IngestOnDeploy",
            "handle_deploy",
            "Starts a knowledge base ingestion job when a deployment changes the corpus or data source",
            timeout=600,
            synchronous_caller="CloudFormation's provider framework, which reports every failure to the deployment",
        )
        provider = cr.Provider(
            self,
            "IngestOnDeployProvider",
            on_event_handler=function,
            log_group=self.create_log_group(
                "IngestOnDeployProviderLogs", retention_days=self._log_retention_days, key=self.key
            ),
        )
        self._acknowledge_provider(provider)
        fingerprint = (
            corpus_fingerprint(self.corpus_dir) if self.config.knowledge_base.deploy_sample_corpus else "none"
        )
        resource = cdk.CustomResource(
            self,
            "IngestOnDeployResource",
            service_token=provider.service_token,
            resource_type="Custom::KnowledgeBaseIngestion",
            properties={
                "KnowledgeBaseId": self.knowledge_base_id,
                "DataSourceId": self.data_source.attr_data_source_id,
                "CorpusFingerprint": fingerprint,
            },
        )
        if self.corpus_deployment is not None:
            resource.node.add_dependency(self.corpus_deployment)
        return resource

    def _create_outputs(self) -> None:
        cdk.CfnOutput(
            self, "KnowledgeBaseId", value=self.knowledge_base_id, description="Bedrock Knowledge Base id"
        )
        cdk.CfnOutput(
            self, "DataSourceId", value=self.data_source.attr_data_source_id, description="S3 data source id"
        )
        cdk.CfnOutput(
            self,
            "DocsBucketName",
            value=self.docs_bucket.bucket_name,
            description="Put documents here to ingest",
        )

    # --- compliance -------------------------------------------------------------------------------

    def _acknowledge_provider(self, provider: cr.Provider) -> None:
        acknowledge_all(provider, CDK_HELPER_ACKNOWLEDGEMENTS)
        on_event = self.deploy_function_logical_id
        acknowledge(
            provider,
            f"AwsSolutions-IAM5[Resource::<{on_event}.Arn>:*]",
            "CDK's provider framework may invoke any version of our deploy-time ingestion function; the "
            "grant names that one function.",
        )

    @property
    def deploy_function_logical_id(self) -> str:
        return self.get_logical_id(self._cfn(self.deploy_function))

    def _acknowledge_findings(self) -> None:
        acknowledge_cdk_helpers(self)
        docs_objects = (
            f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(self._cfn(self.docs_bucket))}.Arn>/*]"
        )
        acknowledge(
            self.role,
            docs_objects,
            "The knowledge base ingests every document in its own docs bucket; object keys are not known in advance.",
        )
        acknowledge(
            self.docs_bucket,
            "NIST.800.53.R5-S3BucketReplicationEnabled",
            "Versioned bucket of re-creatable data (documents come from their owners and the repository); "
            "cross-region replication would double storage for no recovery need.",
        )
        for child in self.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                self._acknowledge_bucket_deployment(child, docs_objects)

    def _acknowledge_bucket_deployment(self, function: IConstruct, docs_objects: str) -> None:
        reason = (
            "CDK's BucketDeployment copies the sample corpus from the CDK asset bucket into the docs bucket "
            "and prunes the sample-corpus/ prefix; CDK generates this grant and its action wildcards."
        )
        region, account = nag_region_and_account(self)
        findings = [
            "AwsSolutions-IAM5[Action::s3:GetObject*]",
            "AwsSolutions-IAM5[Action::s3:GetBucket*]",
            "AwsSolutions-IAM5[Action::s3:List*]",
            "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
            "AwsSolutions-IAM5[Action::s3:Abort*]",
            "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-{account}-{region}/*]",
            docs_objects,
        ]
        acknowledge_all(function, dict.fromkeys(findings, reason))
        acknowledge(
            function,
            "AwsSolutions-L1",
            "CDK's BucketDeployment handler pins its own runtime version, which CDK upgrades; we cannot choose it.",
        )

    @staticmethod
    def _cfn(construct: Construct) -> cdk.CfnElement:
        child = construct.node.default_child
        assert isinstance(child, cdk.CfnElement)
        return child
