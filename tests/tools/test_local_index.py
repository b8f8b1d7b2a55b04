"""The embedded knowledge index over the real corpus with real embeddings (faiss + SQLite FTS5)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tools.errors import ErrorCode, ToolError
from tools.local_index import Embedder, IndexError_, KnowledgeIndex, load_chunks

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def index(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> KnowledgeIndex:
    return KnowledgeIndex.build(CORPUS, tmp_path_factory.mktemp("index"), embedder)


def test_pdf_chunks_keep_their_page_numbers() -> None:
    chunks = [c for c in load_chunks(CORPUS) if c.uri.endswith(".pdf")]
    assert sorted({c.page or 0 for c in chunks}) == [1, 2, 3, 4, 5, 6, 7]
    reset = [c for c in chunks if "10 seconds" in c.text and "RESET" in c.text]
    assert reset and all(c.page == 6 for c in reset)


def test_markdown_chunks_have_titles_from_sidecars_and_no_page() -> None:
    chunks = [c for c in load_chunks(CORPUS) if c.uri.endswith("mesh-m3-troubleshooting.md")]
    assert {c.title for c in chunks} == {"Nimbus Mesh M3 Troubleshooting Guide"}
    assert all(c.page is None for c in chunks)
    assert "README.md" not in {c.uri.rsplit("/", 1)[-1] for c in load_chunks(CORPUS)}


def test_router_reset_ranks_the_manual_page_first(index: KnowledgeIndex) -> None:
    top = index.search("how do I reset my router", 3)[0]
    assert (top.chunk.title, top.chunk.page) == ("Router X200 User Manual", 6)
    assert 0.3 < top.score <= 1.0


def test_ranking_is_semantic_not_only_keywords(index: KnowledgeIndex) -> None:
    top = index.search("my satellite node light turned yellow", 1)[0]
    assert top.chunk.title == "Nimbus Mesh M3 Troubleshooting Guide"


def test_exact_codes_are_found_through_bm25(index: KnowledgeIndex) -> None:
    hits = index.search("E204", 3)
    assert any("E204" in hit.chunk.text for hit in hits)


def test_scores_are_ordered_by_fused_rank_and_bounded(index: KnowledgeIndex) -> None:
    hits = index.search("refund for annual Care+ plan", 5)
    assert len(hits) == 5
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)
    assert hits[0].chunk.title.startswith("Billing and Subscription FAQ")


@pytest.mark.parametrize(
    ("query", "limit", "message"),
    [("  ", 3, "query"), ("router", 0, "max_results"), ("router", 11, "max_results")],
)
def test_bad_queries_are_rejected(index: KnowledgeIndex, query: str, limit: int, message: str) -> None:
    with pytest.raises(ToolError, match=message) as caught:
        index.search(query, limit)
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT


@pytest.mark.parametrize("limit", [1, 10])
def test_result_count_bounds_are_inclusive(index: KnowledgeIndex, limit: int) -> None:
    assert len(index.search("router", limit)) == limit


class CountingEmbedder(Embedder):
    """The real embedder, counting the texts it embeds."""

    def __init__(self, real: Embedder) -> None:
        self.__dict__.update(real.__dict__)
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> Any:
        self.texts.extend(texts)
        return super().embed(texts)


def test_an_unchanged_corpus_is_not_embedded_again(embedder: Embedder, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Guide A\n\n## Setup\n\nPlug the hub into power.\n", encoding="utf-8")
    (corpus / "b.md").write_text("# Guide B\n\n## Lights\n\nA red light means no link.\n", encoding="utf-8")
    cache = tmp_path / "cache"
    first = CountingEmbedder(embedder)
    built = KnowledgeIndex.build(corpus, cache, first)
    assert len(first.texts) == len(built.chunks) == 2
    second = CountingEmbedder(embedder)
    reused = KnowledgeIndex.build(corpus, cache, second)
    assert second.texts == []  # every vector came from the cache
    assert reused.chunks == built.chunks
    assert reused.search("red light", 1)[0].chunk.text == built.search("red light", 1)[0].chunk.text
    assert second.texts == ["red light"]  # only the query
    (corpus / "b.md").write_text("# Guide B\n\n## Lights\n\nA blue light means pairing.\n", encoding="utf-8")
    third = CountingEmbedder(embedder)
    KnowledgeIndex.build(corpus, cache, third)
    assert len(third.texts) == 2  # a changed corpus is embedded again


def test_a_cache_whose_chunks_differ_is_not_used(embedder: Embedder, tmp_path: Path) -> None:
    """The vectors file alone is not trusted: its chunk list must equal the corpus's chunks."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Guide A\n\n## Setup\n\nPlug the hub into power.\n", encoding="utf-8")
    cache = tmp_path / "cache"
    KnowledgeIndex.build(corpus, cache, embedder)
    (chunks_file,) = cache.glob("*.json")
    chunks_file.write_text("[]", encoding="utf-8")
    counting = CountingEmbedder(embedder)
    KnowledgeIndex.build(corpus, cache, counting)
    assert len(counting.texts) == 1


def test_the_embedded_text_carries_title_and_section(embedder: Embedder, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Guide A\n\n## Setup\n\nPlug the hub into power.\n", encoding="utf-8")
    counting = CountingEmbedder(embedder)
    index = KnowledgeIndex.build(corpus, None, counting)
    assert counting.texts == ["Guide A. Setup\n## Setup\n\nPlug the hub into power."]
    assert index.search("hub power", 1)[0].score > 0.3


def test_cache_is_reused_and_invalidated_by_a_change(embedder: Embedder, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Guide A\n\n## Setup\n\nPlug the hub into power.\n", encoding="utf-8")
    cache = tmp_path / "cache"
    KnowledgeIndex.build(corpus, cache, embedder)
    assert len(list(cache.glob("*.npy"))) == 1
    KnowledgeIndex.build(corpus, cache, embedder)
    assert len(list(cache.glob("*.npy"))) == 1
    (corpus / "a.md").write_text(
        "# Guide A\n\n## Setup\n\nPlug the hub into a wall socket.\n", encoding="utf-8"
    )
    rebuilt = KnowledgeIndex.build(corpus, cache, embedder)
    assert len(list(cache.glob("*.npy"))) == 2
    assert "wall socket" in rebuilt.search("power", 1)[0].chunk.text


def test_bad_corpus_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match="does not exist"):
        load_chunks(tmp_path / "missing")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    with pytest.raises(IndexError_, match=r"broken\.pdf"):
        load_chunks(tmp_path)
    (tmp_path / "broken.pdf").unlink()
    with pytest.raises(IndexError_, match="no documents"):
        load_chunks(tmp_path)


@pytest.mark.parametrize(
    ("sentence", "page"),
    [
        ("Factory reset procedure", 6),  # corpus/README.md: the factory reset is on page 6
        ("hold the recessed RESET button", 6),
        ("220 x 160 x 45 mm", 7),
    ],
)
def test_known_sentences_are_cited_on_the_page_a_pdf_viewer_shows(sentence: str, page: int) -> None:
    chunks = [c for c in load_chunks(CORPUS) if c.uri.endswith(".pdf")]
    found = {c.page for c in chunks if sentence in " ".join(c.text.split())}
    assert found == {page}


def test_the_first_pdf_page_is_page_one() -> None:
    pages = [c.page for c in load_chunks(CORPUS) if c.uri.endswith(".pdf")]
    assert min(p for p in pages if p is not None) == 1 and None not in pages
