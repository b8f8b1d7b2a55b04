"""The golden dataset: one JSON object per line, validated by a schema, errors reported by line.

A case is one conversation: one or more turns sent in the same session. Each turn says what a good
agent does with it: the tools it should call (with the arguments that matter), the documents its answer
should come from, whether the guardrail should block it, and a reference answer for the judge.

    {"id": "router-reset", "category": "knowledge", "tags": ["router-x200"],
     "turns": [{"input": "How do I factory reset my Router X200?",
                "reference_answer": "Hold the reset button for 10 seconds ...",
                "expected_tools": [{"name": "search_knowledge_base", "arguments": {"query": "reset"}}],
                "expected_documents": ["router-x200-user-manual.pdf"]}]}

Argument expectations (`expected_tools[].arguments`) are matched against what the agent sent:
- a string matches when it appears in the actual value, case-insensitively (`"reset"` matches
  `"factory reset router"`);
- a number, boolean or null must be equal;
- `{"any_of": [...]}` matches when any listed expectation matches;
- `{"pattern": "^TCK-[0-9A-F]{8}$"}` matches a regular expression (for ids created earlier in the case).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from corpus import reader as corpus_reader
from tools.specs import TOOL_SPECS

MAX_PROMPT_CHARS = 8000
TOOL_NAMES = frozenset(spec.name for spec in TOOL_SPECS)
_TOOL_PROPERTIES = {spec.name: frozenset(spec.input_schema.get("properties", {})) for spec in TOOL_SPECS}

Category = Literal["knowledge", "tickets", "guardrail", "memory", "conversation", "web"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExpectedTool(_Strict):
    """A tool the agent should call in a turn, with the arguments that matter."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_tool(cls, name: str) -> str:
        if name not in TOOL_NAMES:
            raise ValueError(f"unknown tool {name!r}; known tools: {sorted(TOOL_NAMES)}")
        return name

    @model_validator(mode="after")
    def _known_arguments(self) -> ExpectedTool:
        allowed = _TOOL_PROPERTIES[self.name]
        for key, expectation in self.arguments.items():
            if key not in allowed:
                raise ValueError(
                    f"tool {self.name!r} has no argument {key!r}; its arguments: {sorted(allowed)}"
                )
            check_expectation(expectation, f"arguments.{key}")
        return self


class Turn(_Strict):
    """One user message and what a good answer to it looks like."""

    input: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    reference_answer: str | None = Field(default=None, min_length=1)
    expected_tools: tuple[ExpectedTool, ...] = ()
    expected_documents: tuple[str, ...] = ()
    guardrail_blocked: bool = False
    answer_contains: tuple[str, ...] = ()

    @field_validator("input")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _blocked_turns_do_nothing(self) -> Turn:
        if self.guardrail_blocked and (self.expected_tools or self.expected_documents):
            raise ValueError("a turn the guardrail should block cannot expect tools or documents")
        if self.expected_documents and "search_knowledge_base" not in {t.name for t in self.expected_tools}:
            raise ValueError("expected_documents needs search_knowledge_base among expected_tools")
        return self


class GoldenCase(_Strict):
    """One conversation of the golden dataset."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    category: Category
    description: str | None = None
    tags: tuple[str, ...] = ()
    turns: tuple[Turn, ...] = Field(min_length=1, max_length=10)

    @property
    def multi_turn(self) -> bool:
        return len(self.turns) > 1


class DatasetError(ValueError):
    """The dataset file is invalid; `errors` holds one `path:line: message` entry per problem."""

    def __init__(self, path: Path, errors: list[str]) -> None:
        self.path = path
        self.errors = errors
        super().__init__(f"{path}: {len(errors)} invalid line(s):\n" + "\n".join(f"  {e}" for e in errors))


def check_expectation(expectation: Any, where: str) -> None:
    """Raise ValueError when an argument expectation is not one of the supported forms."""
    if isinstance(expectation, dict):
        if (
            set(expectation) == {"any_of"}
            and isinstance(expectation["any_of"], list)
            and expectation["any_of"]
        ):
            for index, option in enumerate(expectation["any_of"]):
                check_expectation(option, f"{where}.any_of.{index}")
            return
        if set(expectation) == {"pattern"} and isinstance(expectation["pattern"], str):
            try:
                re.compile(expectation["pattern"])
            except re.error as exc:
                raise ValueError(f"{where}: invalid pattern ({exc})") from None
            return
        raise ValueError(f"{where}: an object must be {{'any_of': [...]}} or {{'pattern': '...'}}")
    if isinstance(expectation, list):
        raise ValueError(f"{where}: use {{'any_of': [...]}} for alternatives, not a bare list")
    if expectation is not None and not isinstance(expectation, str | int | float | bool):
        raise ValueError(f"{where}: unsupported value {expectation!r}")


def parse_line(text: str) -> GoldenCase:
    """Validate one JSONL line (raises ValueError with a readable message)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise ValueError("each line must be a JSON object")
    try:
        return GoldenCase.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(_format(exc)) from None


def load_dataset(path: Path, corpus_dir: Path | None = None) -> list[GoldenCase]:
    """Read and validate a JSONL golden dataset.

    Args:
        path: the `.jsonl` file; blank lines and lines starting with `#` are skipped.
        corpus_dir: when given, every expected document must be a file in this directory.

    Raises:
        DatasetError: listing every invalid line with its line number (all problems, not only the first).
        FileNotFoundError: when the file does not exist.
    """
    errors: list[str] = []
    cases: list[GoldenCase] = []
    seen: dict[str, int] = {}
    known_documents = _corpus_documents(corpus_dir) if corpus_dir else None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            case = parse_line(line)
        except ValueError as exc:
            errors.append(f"{path.name}:{number}: {exc}")
            continue
        if case.id in seen:
            errors.append(f"{path.name}:{number}: id {case.id!r} already used on line {seen[case.id]}")
            continue
        seen[case.id] = number
        if known_documents is not None:
            for document in _documents(case):
                if document not in known_documents:
                    errors.append(
                        f"{path.name}:{number}: expected document {document!r} is not in {corpus_dir}; "
                        f"known: {sorted(known_documents)}"
                    )
        cases.append(case)
    if errors:
        raise DatasetError(path, errors)
    if not cases:
        raise DatasetError(path, [f"{path.name}: the dataset has no cases"])
    return cases


def _documents(case: GoldenCase) -> Iterable[str]:
    for turn in case.turns:
        yield from turn.expected_documents


def _corpus_documents(corpus_dir: Path) -> frozenset[str]:
    # corpus.reader decides what a document is (the knowledge base and the local index use it too).
    return frozenset(corpus_reader.document_names(corpus_dir, setting="corpus_dir"))


def _format(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "line"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
