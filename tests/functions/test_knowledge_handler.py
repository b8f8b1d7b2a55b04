"""The knowledge Lambda against a botocore Stubber: the exact Retrieve request and the mapping of results."""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from functions.common import MissingSettingError
from functions.knowledge import handler as knowledge_handler
from functions.tool_target import IDENTITY_SOURCE
from tools.dispatch import ToolTable
from tools.knowledge import KnowledgeSearch, knowledge_tools

KB_ID = "KBTEST1234"
BUCKET = "s3://aaf-docs-123456789012"
CONTEXT = SimpleNamespace(
    client_context=SimpleNamespace(custom={"bedrockAgentCoreToolName": "knowledge___search_knowledge_base"})
)


def result(text, uri, score, **metadata):
    return {
        "content": {"text": text, "type": "TEXT"},
        "location": {"type": "S3", "s3Location": {"uri": uri}},
        "metadata": {"x-amz-bedrock-kb-source-uri": uri, "x-amz-bedrock-kb-chunk-id": "c1", **metadata},
        "score": score,
    }


RESPONSE = {
    "retrievalResults": [
        result(
            "Hold the recessed RESET button for 10 seconds until the Status ring blinks red.",
            f"{BUCKET}/router-x200-user-manual.pdf",
            0.8312,
            # Bedrock's 0-based page index of the manual's 6th page (docs/knowledge-base.md, "Page numbers").
            **{"x-amz-bedrock-kb-document-page-number": 5.0, "title": "Router X200 User Manual"},
        ),
        result(
            "A red light on a Mesh M3 node means it lost its connection to the router.",
            f"{BUCKET}/mesh-m3-troubleshooting.md",
            0.90123456,
            title="Mesh M3 Troubleshooting Guide",
        ),
        result("Returns are accepted within 30 days.", f"{BUCKET}/warranty-and-returns-policy.md", 0.41),
    ]
}


@pytest.fixture
def stubbed(monkeypatch):
    client = boto3.client(
        "bedrock-agent-runtime", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    table = ToolTable(knowledge_tools(KnowledgeSearch(client, KB_ID)), identity_source=IDENTITY_SOURCE)
    monkeypatch.setattr(knowledge_handler, "_table", table)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def expect(stubber, query, number, response=RESPONSE):
    stubber.add_response(
        "retrieve",
        response,
        {
            "knowledgeBaseId": KB_ID,
            "retrievalQuery": {"text": query},
            "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": number}},
        },
    )


def test_request_is_exact_and_query_is_trimmed(stubbed):
    expect(stubbed, "how do I factory reset the X200", 3)
    knowledge_handler.handler({"query": "  how do I factory reset the X200 ", "max_results": 3}, CONTEXT)


def test_default_number_of_results_is_five(stubbed):
    expect(stubbed, "red light", 5)
    knowledge_handler.handler({"query": "red light"}, CONTEXT)


def test_null_max_results_uses_the_default(stubbed):
    expect(stubbed, "red light", 5)
    knowledge_handler.handler({"query": "red light", "max_results": None}, CONTEXT)


def test_results_are_mapped_best_first_with_citation_fields(stubbed):
    expect(stubbed, "red light", 5)
    answer = knowledge_handler.handler({"query": "red light"}, CONTEXT)
    json.dumps(answer)
    assert answer["count"] == 3
    assert answer["results"][0] == {
        "text": "A red light on a Mesh M3 node means it lost its connection to the router.",
        "title": "Mesh M3 Troubleshooting Guide",
        "uri": f"{BUCKET}/mesh-m3-troubleshooting.md",
        "page": None,
        "score": 0.9012,
    }
    assert answer["results"][1]["page"] == 6
    assert answer["results"][1]["title"] == "Router X200 User Manual"


def test_missing_title_falls_back_to_the_file_name(stubbed):
    expect(stubbed, "returns", 5)
    hit = knowledge_handler.handler({"query": "returns"}, CONTEXT)["results"][2]
    assert hit["title"] == "Warranty And Returns Policy"
    assert hit["page"] is None


def test_missing_location_and_metadata_still_map(stubbed):
    bare = {"retrievalResults": [{"content": {"text": "Some passage."}}]}
    expect(stubbed, "anything", 5, bare)
    hit = knowledge_handler.handler({"query": "anything"}, CONTEXT)["results"][0]
    assert hit == {
        "text": "Some passage.",
        "title": "Untitled document",
        "uri": None,
        "page": None,
        "score": None,
    }


def page_of(stubber, value):
    """The citation page the Lambda returns for a Retrieve result whose metadata holds `value` under
    x-amz-bedrock-kb-document-page-number (the metadata map holds JSON values: the Stubber checks the
    response against the bedrock-agent-runtime model, which types them as documents)."""
    response = {
        "retrievalResults": [
            result(
                "Hold the recessed RESET button for 10 seconds.",
                f"{BUCKET}/router-x200-user-manual.pdf",
                0.5,
                **{"x-amz-bedrock-kb-document-page-number": value},
            )
        ]
    }
    expect(stubber, "q", 5, response)
    return knowledge_handler.handler({"query": "q"}, CONTEXT)["results"][0]["page"]


@pytest.mark.parametrize(("value", "page"), [(0, 1), (0.0, 1), (5, 6), (5.0, 6), (6.0, 7), (299, 300)])
def test_bedrock_page_index_becomes_the_page_a_pdf_viewer_shows(stubbed, value, page):
    assert page_of(stubbed, value) == page


@pytest.mark.parametrize(("value", "page"), [("0", 1), ("5", 6), (" 5.0 ", 6)])
def test_page_index_given_as_a_string_is_parsed(stubbed, value, page):
    assert page_of(stubbed, value) == page


@pytest.mark.parametrize(
    "value", [-1, -0.5, 2.5, "n/a", "", float("nan"), float("inf"), True, None, [5], {"p": 5}]
)
def test_unusable_page_numbers_become_none(stubbed, value):
    assert page_of(stubbed, value) is None


def test_empty_passages_are_skipped(stubbed):
    empty = {"retrievalResults": [result("   ", f"{BUCKET}/a.md", 0.9)]}
    expect(stubbed, "q", 5, empty)
    assert knowledge_handler.handler({"query": "q"}, CONTEXT) == {"query": "q", "results": [], "count": 0}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": 12}, "query"),
        ({"query": "q" * 1001}, "query"),
        ({"query": "q", "max_results": 0}, "max_results"),
        ({"query": "q", "max_results": 11}, "max_results"),
        ({"query": "q", "max_results": "5"}, "max_results"),
        ({"query": "q", "max_results": True}, "max_results"),
        ({"query": "q", "filter": {"product": "x"}}, "filter"),
        # the interceptor gives the identity argument only to identity targets: here it is unknown
        ({"query": "q", "_actor": "someone"}, "_actor"),
    ],
)
def test_bad_input_is_rejected_without_calling_bedrock(stubbed, event, field):
    answer = knowledge_handler.handler(event, CONTEXT)
    assert answer["error"]["code"] == "invalid_argument"
    assert answer["error"]["message"].startswith(f"{field}:")


@pytest.mark.parametrize("name", ["knowledge___delete", "tickets___create_ticket", ""])
def test_unknown_tool_is_rejected_without_calling_bedrock(stubbed, name):
    other = SimpleNamespace(client_context=SimpleNamespace(custom={"bedrockAgentCoreToolName": name}))
    error = knowledge_handler.handler({"query": "q"}, other)["error"]
    assert error["code"] == "unknown_tool"
    assert error["message"].endswith("known tools: ['search_knowledge_base']")


def test_max_results_given_as_an_integral_number_is_an_integer(stubbed):
    expect(stubbed, "red light", 3)
    knowledge_handler.handler({"query": "red light", "max_results": 3.0}, CONTEXT)


def test_missing_knowledge_base_setting_names_the_variable(monkeypatch):
    monkeypatch.delenv("KNOWLEDGE_BASE_ID", raising=False)
    monkeypatch.setattr(knowledge_handler, "_table", None)
    with pytest.raises(MissingSettingError, match="KNOWLEDGE_BASE_ID"):
        knowledge_handler.handler({"query": "q"}, CONTEXT)
