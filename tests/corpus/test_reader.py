"""One corpus reader: the knowledge-base upload, the local index and the evaluation dataset see the same
documents, for a nested corpus with mixed types; an unsupported file is an error naming it, never skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus import reader
from eval.dataset import _corpus_documents
from tools.local_index import IndexError_, load_chunks

SIDECAR = json.dumps({"metadataAttributes": {"title": "Guide", "product": "router-x200"}})


def nested_corpus(root: Path) -> Path:
    (root / "manuals" / "routers").mkdir(parents=True)
    (root / "faq").mkdir()
    (root / "README.md").write_text("# About this corpus (not a document)\n")
    (root / "build_tool.py").write_text("print('code, not a document')\n")
    (root / ".hidden.md").write_text("# hidden\n")
    (root / "top.md").write_text("# Top\n\nA top-level document about resets.\n")
    (root / "top.md.metadata.json").write_text(SIDECAR)
    (root / "manuals" / "routers" / "guide.txt").write_text("Hold the reset button for ten seconds.\n")
    (root / "manuals" / "README.md").write_text("# Manuals\n\nA nested README is a document.\n")
    (root / "faq" / "billing.md").write_text("# Billing\n\nInvoices arrive monthly.\n")
    return root


EXPECTED = ["faq/billing.md", "manuals/README.md", "manuals/routers/guide.txt", "top.md"]


def upload_set(corpus: Path) -> list[str]:
    """What the knowledge-base stack uploads (validated files), documents only."""
    files = reader.validate_corpus(corpus)
    return sorted(p.relative_to(corpus).as_posix() for p in files if not reader.is_sidecar(p))


def index_set(corpus: Path) -> list[str]:
    return sorted({chunk.uri.removeprefix("corpus/") for chunk in load_chunks(corpus)})


def test_the_three_consumers_see_the_same_documents_of_a_nested_corpus(tmp_path: Path) -> None:
    corpus = nested_corpus(tmp_path)
    assert upload_set(corpus) == EXPECTED
    assert index_set(corpus) == EXPECTED
    assert sorted(_corpus_documents(corpus)) == EXPECTED


def test_the_sample_corpus_is_the_same_for_every_consumer() -> None:
    corpus = Path(reader.__file__).parent
    assert upload_set(corpus) == index_set(corpus) == sorted(_corpus_documents(corpus))
    assert "router-x200-user-manual.pdf" in upload_set(corpus)


@pytest.mark.parametrize("name", ["diagram.png", "nested/sheet.docx", "page.html"])
def test_an_unsupported_file_is_an_error_for_every_consumer(tmp_path: Path, name: str) -> None:
    corpus = nested_corpus(tmp_path)
    (corpus / name).parent.mkdir(parents=True, exist_ok=True)
    (corpus / name).write_bytes(b"not empty")
    message = rf"{name}: type \.\w+ is not supported; allowed: \['\.md', '\.pdf', '\.txt'\]"
    with pytest.raises(reader.CorpusError, match=message):
        reader.validate_corpus(corpus)
    with pytest.raises(IndexError_, match=message):
        load_chunks(corpus)
    with pytest.raises(reader.CorpusError, match=message):
        _corpus_documents(corpus)


def test_hidden_and_cache_folders_are_skipped_anywhere(tmp_path: Path) -> None:
    corpus = nested_corpus(tmp_path)
    (corpus / "faq" / ".git").mkdir()
    (corpus / "faq" / ".git" / "config").write_text("x")
    (corpus / "faq" / "__pycache__").mkdir()
    (corpus / "faq" / "__pycache__" / "x.pyc").write_bytes(b"x")
    assert upload_set(corpus) == EXPECTED


def test_the_fingerprint_follows_nested_documents(tmp_path: Path) -> None:
    corpus = nested_corpus(tmp_path)
    before = reader.corpus_fingerprint(corpus)
    (corpus / "manuals" / "routers" / "guide.txt").write_text("Hold it for twenty seconds.\n")
    assert reader.corpus_fingerprint(corpus) != before
