"""frontend/citations.py: the cited rule (document AND page) and pre-signed document links (moto S3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.stub import Stubber
from moto import mock_aws

from clients.agentcore import Citation
from frontend.citations import PRESIGN_EXPIRY_S, DocumentLinker, answer_cites, split_sources

MANUAL_P3 = Citation("Router X200 Manual", "s3://aaf-docs/sample-corpus/router-x200-manual.pdf", page=3)
MANUAL_P5 = Citation("Router X200 Manual", "s3://aaf-docs/sample-corpus/router-x200-manual.pdf", page=5)
WARRANTY = Citation("Warranty Policy", "s3://aaf-docs/sample-corpus/warranty-policy.md")


@pytest.mark.parametrize(
    ("answer", "page3", "page5"),
    [
        ("Hold RESET for 10 seconds [Router X200 Manual, p. 3].", True, False),
        ("Hold RESET [router x200 manual, p.3].", True, False),  # case and spacing
        ("Hold RESET (router-x200-manual.pdf, page 3).", True, False),  # the file name counts as the document
        ("See the Router X200 Manual p. 5 for the LEDs.", False, True),
        ("[Router X200 Manual, pp. 3-5]", True, True),  # a range cites each page in it
        ("[Router X200 Manual, pages 3 and 5]", True, True),
        ("[Router X200 Manual, p. 30]", False, False),  # p. 30 is not p. 3
        ("The Router X200 Manual explains it.", False, False),  # the document without a page cites no page
        ("[Mesh M5 Setup Guide, p. 3]", False, False),  # another document's page 3
        ("[Mesh M5 Setup Guide, p. 7; Router X200 Manual, p. 5]", False, True),
    ],
)
def test_a_page_is_cited_only_with_its_document_and_its_page(answer: str, page3: bool, page5: bool) -> None:
    assert (answer_cites(answer, MANUAL_P3), answer_cites(answer, MANUAL_P5)) == (page3, page5)


def test_a_source_without_pages_is_cited_by_naming_its_document() -> None:
    assert answer_cites("Returns are free within 30 days [Warranty Policy].", WARRANTY)
    assert answer_cites("as warranty-policy.md says", WARRANTY)
    assert not answer_cites("Returns are free within 30 days.", WARRANTY)


def test_names_too_short_to_be_a_citation_are_ignored() -> None:
    assert not answer_cites("Go to the A1 settings.", Citation("A1", "https://x.example/", page=None))


def test_split_keeps_the_agents_order_and_ignores_its_document_level_flag() -> None:
    # the agent marks both pages cited because the answer names the manual; only p. 3 is cited
    citations = [
        Citation(**{**MANUAL_P5.__dict__, "cited": True, "score": 0.9}),
        Citation(**{**MANUAL_P3.__dict__, "cited": True, "score": 0.8}),
        WARRANTY,
    ]
    cited, retrieved = split_sources(citations, "Hold RESET [Router X200 Manual, p. 3].")
    assert [c.page for c in cited] == [3]
    assert [(c.title, c.page) for c in retrieved] == [("Router X200 Manual", 5), ("Warranty Policy", None)]


# --- pre-signed links ------------------------------------------------------------------------------


@pytest.fixture
def docs_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="aaf-docs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(
            Bucket="aaf-docs",
            Key="sample-corpus/router-x200-manual.pdf",
            Body=b"%PDF-1.7 manual",
            ContentType="application/pdf",
        )
        yield s3


def test_a_docs_bucket_source_gets_a_short_lived_sigv4_regional_url(docs_bucket: Any) -> None:
    url = DocumentLinker("aaf-docs", "eu-west-1").url(MANUAL_P3.uri)
    assert url is not None
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    # SSE-KMS objects are served only to SigV4 requests; botocore's default here would be SigV2
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == str(PRESIGN_EXPIRY_S) == "900"
    assert query["X-Amz-Credential"].endswith("/eu-west-1/s3/aws4_request")
    assert query["X-Amz-SignedHeaders"] == "host"
    # the regional host: the global one may redirect and break the signed host header
    assert (parts.scheme, parts.netloc) == ("https", "aaf-docs.s3.eu-west-1.amazonaws.com")
    assert parts.path == "/sample-corpus/router-x200-manual.pdf"
    response = requests.get(url, timeout=10)  # served by moto: the URL names the object
    assert (response.status_code, response.content) == (200, b"%PDF-1.7 manual")


def test_only_the_docs_bucket_is_signed() -> None:
    linker = DocumentLinker("aaf-docs", "eu-west-1", client=object())  # any call on it would fail
    assert linker.url("s3://someone-elses-bucket/secret.pdf") is None
    assert linker.url("https://aaf-docs.s3.amazonaws.com/x.pdf") is None
    assert linker.url("s3://aaf-docs") is None


def test_signing_makes_no_request(docs_bucket: Any) -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    with Stubber(client) as stub:  # a request would raise: nothing is queued
        assert DocumentLinker("aaf-docs", "eu-west-1", client=client).url(MANUAL_P3.uri)
        stub.assert_no_pending_responses()


def test_no_credentials_means_no_link_not_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # A fresh process has no default session; an earlier test's one would hold its cached credentials.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    assert DocumentLinker("aaf-docs", "eu-west-1").url(MANUAL_P3.uri) is None
