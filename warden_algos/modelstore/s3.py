"""The S3 backend of the model store: objects in a bucket, conditional writes by S3 itself.

``If-None-Match: *`` and ``If-Match: <etag>`` make S3 refuse a write that would replace what
another writer put meanwhile, so no lock service is needed (as for releases). boto3 is imported
by whoever makes the client (``ReleaseConfig.client``); this module only talks to it, so the
executable and the local backend never need it.
"""

from __future__ import annotations

from typing import Any

from .objects import Conflict, TooLarge


def _code(error: Exception) -> Any:
    return getattr(error, "response", {}).get("Error", {}).get("Code")


def _precondition_failed(error: Exception) -> bool:
    # 409 ConditionalRequestConflict: another conditional write to the key was under way.
    return _code(error) in ("PreconditionFailed", "412", "ConditionalRequestConflict")


def _missing(error: Exception) -> bool:
    return _code(error) in ("NoSuchKey", "404", "NotFound")


class S3Objects:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def check(self, *, writing: bool) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def get(self, key: str, limit: int | None = None) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                return None
            raise
        body = answer["Body"]
        if limit is not None and int(answer.get("ContentLength", 0)) > limit:
            body.close()
            raise TooLarge(key)
        data: bytes = body.read() if limit is None else body.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise TooLarge(key)
        return data, str(answer["ETag"])

    def put(
        self, key: str, body: bytes, *, if_match: str | None = None, if_absent: bool = False
    ) -> None:
        from botocore.exceptions import ClientError

        condition = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"} if if_absent else {}
        content_type = "application/json" if key.endswith(".json") else "application/octet-stream"
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **condition
            )
        except ClientError as error:
            if condition and _precondition_failed(error):
                raise Conflict(key) from None
            raise

    def keys(self, prefix: str) -> list[str]:
        return list(self.listing(prefix))

    def listing(self, prefix: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            found.update((item["Key"], str(item["ETag"])) for item in page.get("Contents", []))
        return found
