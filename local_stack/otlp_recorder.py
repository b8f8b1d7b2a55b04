"""A local stand-in for a Langfuse server (tests, benchmarks, `make eval`): an OTLP/HTTP trace recorder plus the public API calls we use.

A real Langfuse cannot run on this machine (it is distributed as containers only), so tests assert our
side of the contract against this recorder. It binds 127.0.0.1 on a free port and accepts:

- `POST /api/public/otel/v1/traces` (Langfuse's OTLP path) and `POST /v1/traces` (plain OTLP), with
  protobuf or JSON bodies, optionally gzip-compressed; spans are decoded with opentelemetry-proto into
  `RecordedSpan` values (attributes as Python values, hex ids);
- `POST /api/public/scores` (a JSON list of scores, as langfuse 5 batches them) answering 202;
- datasets and dataset items (`/api/public/v2/datasets`, `/api/public/dataset-items`), kept in memory so
  `Langfuse.get_dataset()` / `create_dataset_item()` work against it;
- `GET /api/public/projects` (`Langfuse.auth_check()`), `GET /api/public/health`,
  `POST /api/public/ingestion` (legacy batch ingestion, answered 207);
- anything else under `/api/public/` is recorded and answered from `respond()` routes, else 404.

When keys are given, every `/api/public/*` and `/v1/*` call (except health) must carry
`Authorization: Basic base64(public:secret)`, else 401. `fail_with(503)` makes matching paths answer
errors (a trace backend that is down); `recover()` undoes it. Every request is recorded.

    with OtlpRecorder(public_key="pk-lf-test", secret_key="sk-lf-test") as langfuse:
        os.environ["LANGFUSE_BASE_URL"] = langfuse.url
        ...  # run the code under test
        spans = langfuse.wait_for_spans(name="invoke_agent support-agent")
        scores = langfuse.wait_for_scores(1)
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from local_stack.loopback import LoopbackHandler, LoopbackServer

T = TypeVar("T")

LANGFUSE_TRACES_PATH = "/api/public/otel/v1/traces"
OTLP_TRACES_PATH = "/v1/traces"
TRACE_PATHS = (LANGFUSE_TRACES_PATH, OTLP_TRACES_PATH)
SCORES_PATH = "/api/public/scores"
HEALTH_PATH = "/api/public/health"
MAX_BODY_BYTES = 32 * 1024 * 1024
PROJECT_ID = "recorder-project"

_SPAN_KINDS = {value: name.removeprefix("SPAN_KIND_") for name, value in Span.SpanKind.items()}
_STATUS_CODES = {value: name.removeprefix("STATUS_CODE_") for name, value in Status.StatusCode.items()}


@dataclass(frozen=True)
class RecordedEvent:
    """A span event (e.g. an exception) with its attributes."""

    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class RecordedSpan:
    """One decoded span. Ids are lowercase hex; `parent_span_id` is None for a root span."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    status: str
    status_message: str
    events: tuple[RecordedEvent, ...] = ()

    @property
    def duration_ms(self) -> float:
        return (self.end_time_unix_nano - self.start_time_unix_nano) / 1e6

    @property
    def is_root(self) -> bool:
        return self.parent_span_id is None

    def attr(self, key: str, default: Any = None) -> Any:
        """An attribute value; JSON strings (Langfuse metadata, tool arguments) are not decoded."""
        return self.attributes.get(key, default)

    def json_attr(self, key: str, default: Any = None) -> Any:
        """An attribute holding JSON text, decoded (the raw value when it is not valid JSON)."""
        value = self.attributes.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the recorder received, and the status it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes  # decompressed
    status: int
    received_at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """(public key, secret key) from a Basic Authorization header, if any."""
        value = self.header("authorization") or ""
        if not value.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(value[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user, password


@dataclass(frozen=True)
class Route:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


Responder = Callable[[RecordedRequest], Route]


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as a Python value (lists and dicts for arrays and key-value lists)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_dict(value.kvlist_value.values)
    return getattr(value, kind)


def attributes_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in attributes}


def decode_spans(request: ExportTraceServiceRequest) -> list[RecordedSpan]:
    """Flatten an OTLP export request into spans carrying their resource and scope."""
    spans: list[RecordedSpan] = []
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    RecordedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        kind=_SPAN_KINDS.get(span.kind, str(span.kind)),
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        attributes=attributes_dict(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        status=_STATUS_CODES.get(span.status.code, str(span.status.code)),
                        status_message=span.status.message,
                        events=tuple(
                            RecordedEvent(e.name, e.time_unix_nano, attributes_dict(e.attributes))
                            for e in span.events
                        ),
                    )
                )
    return spans


class RecorderError(AssertionError):
    """A wait timed out or the recorder could not decode what it received."""


class OtlpRecorder(LoopbackServer):
    """The recorder server. Use as a context manager; it stops (and frees its port) on exit."""

    def __init__(self, *, public_key: str | None = None, secret_key: str | None = None) -> None:
        if (public_key is None) != (secret_key is None):
            raise ValueError("give both public_key and secret_key, or neither")
        self.public_key = public_key
        self.secret_key = secret_key
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._spans: list[RecordedSpan] = []
        self._scores: list[dict[str, Any]] = []
        self._datasets: dict[str, dict[str, Any]] = {}
        self._items: list[dict[str, Any]] = []
        self._routes: dict[tuple[str, str], Responder] = {}
        self._failure: tuple[int, tuple[str, ...] | None] | None = None
        self.decode_errors: list[str] = []
        super().__init__()

    def handler_class(self) -> type[LoopbackHandler]:
        return _handler_for(self)

    # --- where to point clients ----------------------------------------------------------------------

    @property
    def otel_endpoint(self) -> str:
        """`OTEL_EXPORTER_OTLP_ENDPOINT` for a plain OTEL SDK exporting to Langfuse (it appends /v1/traces)."""
        return f"{self.url}/api/public/otel"

    @property
    def traces_url(self) -> str:
        """`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the full Langfuse OTLP traces URL."""
        return f"{self.url}{LANGFUSE_TRACES_PATH}"

    @property
    def auth_header(self) -> dict[str, str]:
        """`{"Authorization": "Basic ..."}` for the configured keys (empty without keys)."""
        if self.public_key is None or self.secret_key is None:
            return {}
        token = base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    @property
    def otel_headers_env(self) -> str:
        """`OTEL_EXPORTER_OTLP_HEADERS` value carrying the Basic auth (URL-encoded space)."""
        return ",".join(f"{k}={v.replace(' ', '%20')}" for k, v in self.auth_header.items())

    # --- behaviour switches --------------------------------------------------------------------------

    def fail_with(self, status: int = 503, paths: Iterable[str] | None = None) -> None:
        """Answer `status` to every request (or only those whose path starts with one of `paths`)."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error (4xx/5xx), got {status}")
        with self._lock:
            self._failure = (status, tuple(paths) if paths is not None else None)

    def recover(self) -> None:
        """Stop answering errors."""
        with self._lock:
            self._failure = None

    def respond(
        self,
        method: str,
        path: str,
        body: Any | Responder,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer `method path` with a fixed JSON body, or with `body(request) -> Route` when callable."""
        if callable(body):
            self._routes[(method.upper(), path)] = body
        else:
            route = Route(status, body, dict(headers or {}))
            self._routes[(method.upper(), path)] = lambda _request: route

    def clear(self) -> None:
        """Forget recorded requests, spans and scores (datasets are kept)."""
        with self._lock:
            self._requests.clear()
            self._spans.clear()
            self._scores.clear()
            self.decode_errors.clear()

    # --- what was recorded ---------------------------------------------------------------------------

    @property
    def spans(self) -> list[RecordedSpan]:
        with self._lock:
            return list(self._spans)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def scores(self) -> list[dict[str, Any]]:
        """Every score received on POST /api/public/scores, flattened out of their batches."""
        with self._lock:
            return list(self._scores)

    @property
    def datasets(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: dict(value) for name, value in self._datasets.items()}

    @property
    def dataset_items(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(item) for item in self._items]

    def spans_named(self, name: str) -> list[RecordedSpan]:
        return [span for span in self.spans if span.name == name]

    def trace(self, trace_id: str) -> list[RecordedSpan]:
        return [span for span in self.spans if span.trace_id == trace_id]

    def children(self, parent: RecordedSpan) -> list[RecordedSpan]:
        return [s for s in self.spans if s.trace_id == parent.trace_id and s.parent_span_id == parent.span_id]

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method.upper())]

    # --- bounded waits (condition-variable based, no fixed sleeps) -----------------------------------

    def wait_for_spans(
        self,
        count: int = 1,
        *,
        name: str | None = None,
        predicate: Callable[[RecordedSpan], bool] | None = None,
        timeout: float = 10.0,
    ) -> list[RecordedSpan]:
        """Wait until at least `count` spans match (`name` and/or `predicate`); return the matches."""

        def matches() -> list[RecordedSpan]:
            return [
                s
                for s in self._spans
                if (name is None or s.name == name) and (predicate is None or predicate(s))
            ]

        found = self._wait(lambda: len(matches()) >= count, timeout, matches)
        if len(found) < count:
            names = sorted({s.name for s in self._spans})
            raise RecorderError(
                f"waited {timeout}s for {count} span(s) (name={name!r}); got {len(found)}. "
                f"Span names received: {names}. Requests: {self._request_summary()}"
            )
        return found

    def wait_for_requests(
        self, path: str, *, method: str = "POST", count: int = 1, timeout: float = 10.0
    ) -> list[RecordedRequest]:
        """Wait until at least `count` requests to `method path` were received; return them."""

        def matches() -> list[RecordedRequest]:
            return [r for r in self._requests if r.path == path and r.method == method.upper()]

        found = self._wait(lambda: len(matches()) >= count, timeout, matches)
        if len(found) < count:
            raise RecorderError(
                f"waited {timeout}s for {count} {method} {path}; got {len(found)}. "
                f"Requests: {self._request_summary()}"
            )
        return found

    def wait_for_scores(
        self, count: int = 1, *, name: str | None = None, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until at least `count` scores (optionally with this `name`) arrived; return them."""

        def matches() -> list[dict[str, Any]]:
            return [s for s in self._scores if name is None or s.get("name") == name]

        found = self._wait(lambda: len(matches()) >= count, timeout, matches)
        if len(found) < count:
            raise RecorderError(
                f"waited {timeout}s for {count} score(s) (name={name!r}); got {len(found)}. "
                f"Requests: {self._request_summary()}"
            )
        return found

    def _wait(self, done: Callable[[], bool], timeout: float, result: Callable[[], T]) -> T:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(timeout=min(remaining, 0.5))
            return result()

    def _request_summary(self) -> list[str]:
        return [f"{r.method} {r.path} -> {r.status}" for r in self._requests[-20:]]

    # --- request handling (called from the server threads) -------------------------------------------

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Route:
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query)
        route = self._route(method, path, query, headers, body)
        record = RecordedRequest(method, path, query, headers, body, route.status)
        with self._lock:
            self._requests.append(record)
            self._lock.notify_all()
        return route

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> Route:
        with self._lock:
            failure = self._failure
        if failure is not None and (failure[1] is None or path.startswith(failure[1])):
            return Route(failure[0], {"message": "recorder: simulated backend failure"})
        if self.public_key is not None and path != HEALTH_PATH and not self._authorized(headers):
            return Route(401, {"message": "Invalid credentials"})
        custom = self._routes.get((method, path))
        if custom is not None:
            return custom(RecordedRequest(method, path, query, headers, body, 0))
        if method == "POST" and path in TRACE_PATHS:
            return self._export(headers, body)
        if path == HEALTH_PATH:
            return Route(200, {"status": "OK", "version": "3-recorder"})
        if method == "POST" and path == SCORES_PATH:
            return self._accept_scores(body)
        if method == "GET" and path == "/api/public/projects":
            return Route(
                200,
                {
                    "data": [
                        {
                            "id": PROJECT_ID,
                            "name": "recorder",
                            "organization": {"id": "recorder-org", "name": "recorder"},
                            "metadata": {},
                        }
                    ]
                },
            )
        if method == "POST" and path == "/api/public/ingestion":
            batch = _json_or_none(body) or {}
            events = batch.get("batch", []) if isinstance(batch, dict) else []
            ok = [{"id": str(e.get("id", "")), "status": 201} for e in events if isinstance(e, dict)]
            return Route(207, {"successes": ok, "errors": []})
        if path == "/api/public/v2/datasets" or path.startswith("/api/public/v2/datasets/"):
            return self._datasets_api(method, path, query, body)
        if path == "/api/public/dataset-items" or path.startswith("/api/public/dataset-items/"):
            return self._items_api(method, path, query, body)
        return Route(404, {"message": f"recorder: no route for {method} {path}"})

    def _authorized(self, headers: dict[str, str]) -> bool:
        expected = self.auth_header.get("Authorization")
        return headers.get("authorization") == expected

    def _export(self, headers: dict[str, str], body: bytes) -> Route:
        content_type = headers.get("content-type", "application/x-protobuf").split(";")[0].strip()
        request = ExportTraceServiceRequest()
        try:
            if content_type == "application/json":
                json_format.Parse(body.decode("utf-8"), request)
            else:
                request.ParseFromString(body)
        except Exception as exc:  # any decode failure is a client bug the test should see
            with self._lock:
                self.decode_errors.append(f"{content_type}: {exc}")
            return Route(400, {"message": f"recorder: cannot decode OTLP body: {exc}"})
        spans = decode_spans(request)
        with self._lock:
            self._spans.extend(spans)
        payload = ExportTraceServiceResponse().SerializeToString()
        return Route(200, payload, {"Content-Type": "application/x-protobuf"})

    def _accept_scores(self, body: bytes) -> Route:
        payload = _json_or_none(body)
        scores = payload if isinstance(payload, list) else [payload] if isinstance(payload, dict) else None
        if scores is None or not all(isinstance(s, dict) for s in scores):
            return Route(400, {"message": "scores body must be a JSON object or a list of objects"})
        missing = [s for s in scores if "name" not in s or "value" not in s]
        if missing:
            return Route(400, {"message": "every score needs 'name' and 'value'"})
        with self._lock:
            self._scores.extend(scores)
        if isinstance(payload, dict):
            return Route(200, {"id": payload.get("id") or str(uuid.uuid4())})
        return Route(202, {"message": "Accepted"})

    def _datasets_api(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Route:
        if method == "POST" and path == "/api/public/v2/datasets":
            payload = _json_or_none(body)
            if not isinstance(payload, dict) or not payload.get("name"):
                return Route(400, {"message": "dataset needs a 'name'"})
            now = _now()
            with self._lock:
                dataset = self._datasets.get(payload["name"]) or {
                    "id": str(uuid.uuid4()),
                    "projectId": PROJECT_ID,
                    "createdAt": now,
                }
                dataset.update(
                    name=payload["name"],
                    description=payload.get("description"),
                    metadata=payload.get("metadata"),
                    updatedAt=now,
                )
                self._datasets[payload["name"]] = dataset
            return Route(200, dataset)
        if method == "GET" and path == "/api/public/v2/datasets":
            data = list(self.datasets.values())
            return Route(200, _page(data, query))
        if method == "GET":
            name = unquote(path.removeprefix("/api/public/v2/datasets/"))
            found = self.datasets.get(name)
            if found is None:
                return Route(404, {"message": f"Dataset {name} not found"})
            return Route(200, found)
        return Route(405, {"message": f"recorder: {method} {path} not supported"})

    def _items_api(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Route:
        if method == "POST" and path == "/api/public/dataset-items":
            payload = _json_or_none(body)
            if not isinstance(payload, dict) or not payload.get("datasetName"):
                return Route(400, {"message": "dataset item needs a 'datasetName'"})
            with self._lock:
                dataset = self._datasets.get(payload["datasetName"])
                if dataset is None:
                    return Route(404, {"message": f"Dataset {payload['datasetName']} not found"})
                now = _now()
                item = {
                    "id": payload.get("id") or str(uuid.uuid4()),
                    "status": payload.get("status") or "ACTIVE",
                    "input": payload.get("input"),
                    "expectedOutput": payload.get("expectedOutput"),
                    "metadata": payload.get("metadata"),
                    "sourceTraceId": payload.get("sourceTraceId"),
                    "sourceObservationId": payload.get("sourceObservationId"),
                    "datasetId": dataset["id"],
                    "datasetName": dataset["name"],
                    "createdAt": now,
                    "updatedAt": now,
                    "mediaReferences": [],
                }
                self._items = [i for i in self._items if i["id"] != item["id"]] + [item]
            return Route(200, item)
        if method == "GET" and path == "/api/public/dataset-items":
            names = query.get("datasetName")
            name = names[0] if names else None
            items = [i for i in self.dataset_items if name is None or i["datasetName"] == name]
            return Route(200, _page(items, query))
        if method == "GET":
            item_id = unquote(path.removeprefix("/api/public/dataset-items/"))
            for item in self.dataset_items:
                if item["id"] == item_id:
                    return Route(200, item)
            return Route(404, {"message": f"Dataset item {item_id} not found"})
        return Route(405, {"message": f"recorder: {method} {path} not supported"})


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _page(data: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    page = max(1, int((query.get("page") or ["1"])[0]))
    limit = max(1, int((query.get("limit") or ["50"])[0]))
    total_pages = max(1, -(-len(data) // limit))
    chunk = data[(page - 1) * limit : page * limit]
    return {
        "data": chunk,
        "meta": {"page": page, "limit": limit, "totalItems": len(data), "totalPages": total_pages},
    }


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def _handler_for(recorder: OtlpRecorder) -> type[LoopbackHandler]:
    class Handler(LoopbackHandler):
        def _serve(self) -> None:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                raw = self._read_chunked()
            else:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if 0 < length <= MAX_BODY_BYTES else b""
                if length > MAX_BODY_BYTES:
                    raw = None
            if raw is None:
                self._send(Route(413, {"message": "body too large"}))
                self.close_connection = True
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = _decompress(raw, headers.get("content-encoding", ""))
            except (OSError, ValueError, zlib.error) as exc:
                self._send(Route(400, {"message": f"recorder: cannot decompress body: {exc}"}))
                return
            self._send(recorder._handle(self.command, self.path, headers, body))

        def _read_chunked(self) -> bytes | None:
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()  # the blank line after the last chunk
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()  # CRLF after each chunk
                if len(body) > MAX_BODY_BYTES:
                    return None

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def _send(self, route: Route) -> None:
            if isinstance(route.body, bytes):
                payload, content_type = route.body, "application/octet-stream"
            else:
                payload, content_type = json.dumps(route.body).encode(), "application/json"
            headers = {"Content-Type": content_type, **route.headers}
            self.send_response(route.status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def iter_tree(spans: list[RecordedSpan], root: RecordedSpan) -> Iterator[tuple[int, RecordedSpan]]:
    """Depth-first (depth, span) pairs under `root` within its trace, children in start order."""
    by_parent: dict[str | None, list[RecordedSpan]] = {}
    for span in spans:
        if span.trace_id == root.trace_id:
            by_parent.setdefault(span.parent_span_id, []).append(span)
    stack: list[tuple[int, RecordedSpan]] = [(0, root)]
    while stack:
        depth, span = stack.pop()
        yield depth, span
        children = sorted(by_parent.get(span.span_id, []), key=lambda s: s.start_time_unix_nano)
        stack.extend((depth + 1, child) for child in reversed(children))
