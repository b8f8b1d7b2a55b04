"""Which retrieved sources the answer cites, and where a citation links to.

The cited rule (docs/frontend.md, "Citations"): a source is cited when the answer names its document
(title or file name, case-insensitive) AND, for a source with a page, gives that page right after the
name: `[Router X200 Manual, p. 3]`, `(router-x200-manual.pdf, pages 3-4)`, `Router X200 Manual p.3`. A
source without a page is cited when its document is named. Naming a document with another page does
not cite this page. The chat applies the rule to the answer text itself, whatever the agent's
`cited` flag says.

Links: in AgentCore mode, an `s3://` source in the docs bucket (`DOCS_BUCKET_NAME`) links to a
pre-signed GET URL made with the chat task's own credentials (SigV4, 15 minutes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from agent.citations import answer_cites as _answer_cites
from clients.agentcore import Citation

logger = logging.getLogger(__name__)

PRESIGN_EXPIRY_S = 900  # 15 minutes: long enough to click, short enough not to be worth sharing


def answer_cites(answer: str, citation: Citation) -> bool:
    """True when the answer cites this source's document and, if it has one, this page."""
    return _answer_cites(answer, title=citation.title, uri=citation.uri, page=citation.page)


def split_sources(citations: Iterable[Citation], answer: str) -> tuple[list[Citation], list[Citation]]:
    """(sources the answer cites, the other retrieved sources), each in the agent's score order."""
    cited: list[Citation] = []
    retrieved: list[Citation] = []
    for citation in citations:
        (cited if answer_cites(answer, citation) else retrieved).append(citation)
    return cited, retrieved


def parse_s3_uri(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    return (bucket, key) if bucket and key else None


class DocumentLinker:
    """Pre-signed GET URLs for documents in the docs bucket, signed with this process's credentials.

    A pre-signed URL carries the signer's permissions: the chat task role needs `s3:GetObject` on the
    bucket's objects and, the bucket being SSE-KMS, `kms:Decrypt` on its key through S3; a URL made with
    role credentials stops working when that role session ends, even before `ExpiresIn`
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html). SSE-KMS objects
    are served only to SigV4-signed requests
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html), hence `s3v4`:
    botocore 1.44.5 presigns S3 with SigV2 (`AWSAccessKeyId=...&Signature=...`) unless told otherwise.
    It also puts the global host `<bucket>.s3.amazonaws.com` in the URL, which S3 may redirect to the
    regional one, breaking the signed `host` header (boto/boto3#1982, #2989): virtual addressing gives
    `<bucket>.s3.<region>.amazonaws.com`. Signing is local (no request is made); a failure returns None
    and the chat falls back to the S3 console link.
    """

    def __init__(
        self, bucket: str, region: str | None, *, client: Any = None, expires_s: int = PRESIGN_EXPIRY_S
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.expires_s = expires_s
        self._client = client

    def _s3(self) -> Any:
        if self._client is None:
            import boto3  # the chat image needs boto3 only for these links
            from botocore.config import Config

            config = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
            self._client = boto3.client("s3", region_name=self.region, config=config)
        return self._client

    def url(self, uri: str) -> str | None:
        """A pre-signed URL for `s3://<docs bucket>/<key>`; None for any other URI or on failure."""
        parsed = parse_s3_uri(uri)
        if parsed is None or parsed[0] != self.bucket:
            return None
        bucket, key = parsed
        try:
            s3 = self._s3()
            from botocore.exceptions import BotoCoreError
        except ImportError:
            logger.warning("boto3 is not installed: document links are off")
            return None
        try:
            url = s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self.expires_s
            )
        except BotoCoreError as exc:  # NoCredentialsError, ParamValidationError, ...
            logger.warning("could not pre-sign %s: %s", uri, type(exc).__name__)
            return None
        return str(url)
