"""The golden dataset schema: the shipped file is valid, and every kind of bad line is reported by number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.dataset import DatasetError, load_dataset

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "eval" / "datasets" / "golden.jsonl"
CORPUS = REPO / "corpus"

GOOD = {
    "id": "router-reset",
    "category": "knowledge",
    "turns": [
        {
            "input": "How do I reset my router?",
            "reference_answer": "Hold RESET for 10 seconds.",
            "expected_tools": [{"name": "search_knowledge_base", "arguments": {"query": "reset"}}],
            "expected_documents": ["router-x200-user-manual.pdf"],
        }
    ],
}


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def with_turn(**changes: object) -> str:
    case = json.loads(json.dumps(GOOD))
    case["turns"][0].update(changes)
    return json.dumps(case)


def test_golden_dataset_is_valid_and_covers_the_required_kinds() -> None:
    cases = load_dataset(GOLDEN, CORPUS)
    assert len(cases) >= 30
    turns = [t for c in cases for t in c.turns]
    assert any(t.guardrail_blocked for t in turns)
    assert any(c.multi_turn and c.category == "memory" for c in cases)
    assert any(
        c.multi_turn and any(t.name == "create_ticket" for tt in c.turns for t in tt.expected_tools)
        for c in cases
    )
    assert sum(bool(t.expected_documents) for t in turns) >= 20
    assert all(t.reference_answer for t in turns if not t.guardrail_blocked)


def test_invalid_json_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(GOOD), "{not json")
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert caught.value.errors == [
        f"{path.name}:2: not valid JSON (Expecting property name enclosed in double quotes at column 2)"
    ]


def test_every_bad_line_is_reported_not_only_the_first(tmp_path: Path) -> None:
    other = json.loads(with_turn(expected_tools=[{"name": "delete_everything"}], expected_documents=[]))
    other["id"] = "other"
    path = write(tmp_path, json.dumps(GOOD), "", "# a comment", json.dumps(other), json.dumps(GOOD))
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    errors = caught.value.errors
    assert len(errors) == 2
    assert errors[0].startswith(
        f"{path.name}:4: turns.0.expected_tools.0.name: unknown tool 'delete_everything'"
    )
    assert errors[1] == f"{path.name}:5: id 'router-reset' already used on line 1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (with_turn(input="   "), "turns.0.input: must not be blank"),
        (
            with_turn(expected_tools=[{"name": "search_knowledge_base", "arguments": {"q": "x"}}]),
            "has no argument 'q'",
        ),
        (
            with_turn(expected_tools=[{"name": "search_knowledge_base", "arguments": {"query": ["a", "b"]}}]),
            "use {'any_of'",
        ),
        (
            with_turn(
                expected_tools=[{"name": "get_ticket", "arguments": {"ticket_id": {"pattern": "("}}}],
                expected_documents=[],
            ),
            "invalid pattern",
        ),
        (with_turn(guardrail_blocked=True), "cannot expect tools or documents"),
        (with_turn(expected_tools=[]), "expected_documents needs search_knowledge_base"),
        (with_turn(surprise=1), "turns.0.surprise: Extra inputs are not permitted"),
        (json.dumps({**GOOD, "category": "misc"}), "category: Input should be"),
        (json.dumps({**GOOD, "turns": []}), "turns: Tuple should have at least 1 item"),
        (json.dumps({**GOOD, "id": "Bad Id"}), "id: String should match pattern"),
        ("[1, 2]", "each line must be a JSON object"),
    ],
)
def test_schema_errors_name_the_field(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, line)
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert caught.value.errors[0].startswith(f"{path.name}:1: ")
    assert message in caught.value.errors[0]


def test_expected_documents_must_exist_in_the_corpus(tmp_path: Path) -> None:
    path = write(tmp_path, with_turn(expected_documents=["router-x900-manual.pdf"]))
    with pytest.raises(DatasetError) as caught:
        load_dataset(path, CORPUS)
    assert "expected document 'router-x900-manual.pdf' is not in" in caught.value.errors[0]


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no cases"):
        load_dataset(write(tmp_path, "# only a comment"))
