"""The sample support corpus: the PDF is current and extractable, facts sit where the README says."""

from __future__ import annotations

import io
import json
import re

import pytest
from pypdf import PdfReader

from config import REPO_ROOT
from corpus import build_pdf
from corpus.reader import METADATA_SUFFIX, corpus_documents

CORPUS = REPO_ROOT / "corpus"
README = (CORPUS / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pages() -> list[str]:
    reader = PdfReader(io.BytesIO(build_pdf.OUTPUT.read_bytes()))
    return [" ".join((page.extract_text() or "").split()) for page in reader.pages]


def test_committed_pdf_matches_its_build_script() -> None:
    assert build_pdf.OUTPUT.read_bytes() == build_pdf.render()


def test_manual_has_at_least_four_pages_of_text(pages: list[str]) -> None:
    assert len(pages) >= 4 and all(len(text) > 200 for text in pages)


def test_factory_reset_procedure_is_on_page_six(pages: list[str]) -> None:
    assert [n for n, text in enumerate(pages, 1) if "Factory reset procedure" in text] == [6]
    assert "hold the recessed RESET button on the rear panel for 10 seconds" in pages[5]


def test_every_key_fact_is_on_its_stated_page() -> None:
    assert build_pdf.check(build_pdf.OUTPUT.read_bytes()) == []


def test_readme_states_the_reset_page() -> None:
    assert re.search(r"\| 6 \| \*\*Factory reset\*\*", README)


def test_every_document_has_a_metadata_sidecar_with_title_product_and_type() -> None:
    documents = [p for p in corpus_documents(CORPUS) if not p.name.endswith(METADATA_SUFFIX)]
    for document in documents:
        sidecar = document.with_name(document.name + METADATA_SUFFIX)
        attributes = json.loads(sidecar.read_text(encoding="utf-8"))["metadataAttributes"]
        assert {"title", "product", "doc_type"} <= set(attributes), sidecar.name


def test_readme_lists_every_document() -> None:
    documents = [p.name for p in corpus_documents(CORPUS) if not p.name.endswith(METADATA_SUFFIX)]
    assert all(f"`{name}`" in README for name in documents)
