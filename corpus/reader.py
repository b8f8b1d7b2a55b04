"""The one definition of which files of a corpus directory are documents (standard library only).

Every consumer reads a corpus through this module: the knowledge-base stack (what it uploads to the docs
bucket and fingerprints), the local index (`tools/local_index.py`) and the evaluation dataset's document
check (`eval/dataset.py`), so all three see the same documents.

Rules:
- The walk is recursive; hidden files and folders (`.name`) and `__pycache__` are skipped anywhere.
- At the top level, `README.md` (the corpus's own description) and `*.py` (the `corpus` package's code)
  are not documents.
- Every other file is a document of a supported type (`SUPPORTED_DOCUMENT_TYPES`) or a metadata
  sidecar `<document>.metadata.json` in Bedrock's format; anything else is a `CorpusError` naming the
  file and the supported types, never skipped silently.
- The supported types are the ones every consumer can read: Bedrock Knowledge Bases ingests all of
  them and the local index extracts their text (pypdf for PDF). Bedrock limits a source file to 50 MB
  and a metadata file to 10 KB ("Supported document formats and limits for knowledge base data",
  https://docs.aws.amazon.com/bedrock/latest/userguide/knowledge-base-ds.html).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

# suffix -> what it is; one table for every consumer.
SUPPORTED_DOCUMENT_TYPES: dict[str, str] = {
    ".md": "Markdown",
    ".txt": "plain text",
    ".pdf": "PDF",
}
METADATA_SUFFIX = ".metadata.json"
TOP_LEVEL_NON_DOCUMENTS = ("README.md",)
TOP_LEVEL_CODE_SUFFIX = ".py"
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # Bedrock's per-file limit
MAX_METADATA_BYTES = 10 * 1024  # Bedrock's per-sidecar limit


class CorpusError(ValueError):
    """The corpus directory or one of its documents cannot be used; the message names the file."""


def _skipped(relative: Path) -> bool:
    if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
        return True
    top_level = len(relative.parts) == 1
    return top_level and (
        relative.name in TOP_LEVEL_NON_DOCUMENTS or relative.suffix == TOP_LEVEL_CODE_SUFFIX
    )


def corpus_documents(directory: Path) -> list[Path]:
    """Every corpus file (documents and their metadata sidecars), sorted, before validation."""
    files = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not _skipped(path.relative_to(directory)):
            files.append(path)
    return files


def is_sidecar(path: Path) -> bool:
    return path.name.endswith(METADATA_SUFFIX)


def validate_corpus(directory: Path, setting: str = "knowledge_base.corpus_dir") -> list[Path]:
    """Check that every file is a supported document or a well-formed sidecar of one.

    Args:
        directory: the corpus directory.
        setting: the config key (or option) that named the directory, quoted in errors.

    Returns:
        The corpus files, documents and sidecars (see `corpus_documents`).

    Raises:
        CorpusError: naming the directory or file and what is wrong with it.
    """
    if not directory.is_dir():
        raise CorpusError(f"config key {setting!r}: corpus directory {directory} does not exist")
    files = corpus_documents(directory)
    names = {path.relative_to(directory).as_posix() for path in files}
    if not any(not name.endswith(METADATA_SUFFIX) for name in names):
        raise CorpusError(f"config key {setting!r}: corpus directory {directory} holds no documents")
    for path in files:
        name = path.relative_to(directory).as_posix()
        if is_sidecar(path):
            _validate_sidecar(path, name, names)
        elif path.suffix.lower() not in SUPPORTED_DOCUMENT_TYPES:
            raise CorpusError(
                f"corpus file {name}: type {path.suffix or '(none)'} is not supported; "
                f"allowed: {sorted(SUPPORTED_DOCUMENT_TYPES)}"
            )
        elif path.stat().st_size == 0:
            raise CorpusError(f"corpus file {name} is empty")
        elif path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise CorpusError(f"corpus file {name} is larger than Bedrock's 50 MB limit")
    return files


def documents(directory: Path, setting: str = "knowledge_base.corpus_dir") -> list[Path]:
    """The validated documents of the corpus (no sidecars), sorted by relative path."""
    return [path for path in validate_corpus(directory, setting) if not is_sidecar(path)]


def document_names(directory: Path, setting: str = "knowledge_base.corpus_dir") -> list[str]:
    """The documents' paths relative to the corpus directory (posix), e.g. `manuals/router.pdf`."""
    return [path.relative_to(directory).as_posix() for path in documents(directory, setting)]


def sidecar(document: Path) -> Path:
    """Where the metadata sidecar of `document` lives (it may not exist)."""
    return document.with_name(document.name + METADATA_SUFFIX)


def _validate_sidecar(path: Path, name: str, names: set[str]) -> None:
    document = name[: -len(METADATA_SUFFIX)]
    if document not in names:
        raise CorpusError(f"corpus file {name}: metadata sidecar without its document {document}")
    if path.stat().st_size > MAX_METADATA_BYTES:
        raise CorpusError(f"corpus file {name} is larger than Bedrock's 10 KB metadata limit")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(f"corpus file {name} is not valid JSON: {exc}") from None
    attributes = body.get("metadataAttributes") if isinstance(body, dict) else None
    if not isinstance(attributes, dict) or not attributes:
        raise CorpusError(
            f"corpus file {name} must be an object with a non-empty 'metadataAttributes' object"
        )
    for key, value in attributes.items():
        is_scalar = isinstance(value, str | int | float | bool)
        is_string_list = isinstance(value, list) and all(isinstance(item, str) for item in value)
        if not (is_scalar or is_string_list):
            raise CorpusError(
                f"corpus file {name}: attribute {key!r} must be a string, number, boolean or list of strings"
            )


def corpus_fingerprint(directory: Path) -> str:
    """A digest of the names and contents of the corpus files: any change means a new ingestion."""
    digest = hashlib.sha256()
    for path in corpus_documents(directory):
        digest.update(path.relative_to(directory).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
