"""S3 through the amazon provider's S3Hook and an Airflow connection.

The endpoint (AWS, MinIO, a local test server) is the connection's business; nothing here knows which.
Uploads set the right Content-Type on every object and mark it immutable: a version prefix never changes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from vodflow import errors
from vodflow.errors import BadInput, VodflowError
from vodflow.layout import IMMUTABLE_CACHE_CONTROL, S3Location, content_type
from vodflow.presign import PartUrlTemplate, frozen_credentials
from vodflow.ranges import ByteRange, ObjectRead, RangeNotSatisfiable

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

log = logging.getLogger(__name__)
UPLOAD_WORKERS = 8
MISSING_CODES = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


class ObjectMissing(VodflowError, LookupError):
    """There is no object at this key (or no such bucket). Retried in a task (a source that is not there is
    ``BadInput`` instead); the API answers 404."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        self.message = message


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    content_type: str | None
    last_modified: datetime | None = None


def _s3_hook(aws_conn_id: str):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    class VodflowS3Hook(S3Hook):
        def _get_caller(self, target_function_name: str = "execute") -> str:
            # The hook names its caller in the user agent by walking the whole stack (inspect.stack()), over half
            # of an S3 client's creation cost in every task (0.1 CPU s, measured). The caller is always vodflow.
            return "vodflow"

    return VodflowS3Hook(aws_conn_id=aws_conn_id)


def _is_missing(exc: ClientError) -> bool:
    """The error says the object or the bucket does not exist."""
    return str(exc.response.get("Error", {}).get("Code")) in MISSING_CODES



_SHARED_LOADERS: dict[str | None, object] = {}


def share_botocore_models() -> None:
    """Every botocore session of this process shares one data loader, so service models are parsed once.

    Each S3 client the provider's hook makes comes from a new botocore session, and each session parses S3's
    service model and the endpoint rules again (JSON, ≈ 0.1 CPU s a client; several clients a task). Called in
    the Celery worker before it forks (``vodflow.worker.celery_config``), the parsed models are inherited by every task.
    The models are read-only data, keyed by the same search path a session would use.
    """
    import botocore.loaders
    import botocore.session

    if getattr(botocore.session.create_loader, "_vodflow_shared", False):
        return
    create = botocore.loaders.create_loader

    def shared_loader(search_path_string: str | None = None) -> object:
        loader = _SHARED_LOADERS.get(search_path_string)
        if loader is None:
            loader = _SHARED_LOADERS[search_path_string] = create(search_path_string)
        return loader

    shared_loader._vodflow_shared = True  # type: ignore[attr-defined]
    botocore.session.create_loader = shared_loader

class Storage:
    def __init__(self, aws_conn_id: str, bucket: str) -> None:
        self.bucket = bucket
        self.hook = _s3_hook(aws_conn_id)

    @property
    def client(self):
        """The boto3 client the hook built from the Airflow connection (cached by the hook)."""
        return self.hook.get_conn()

    # Sources -----------------------------------------------------------------------------------------------
    def head(self, location: S3Location) -> ObjectInfo:
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=location.bucket, Key=location.key)
        except ClientError as exc:
            if _is_missing(exc):
                raise BadInput(errors.SOURCE_MISSING, f"There is no object at {location.uri}.") from exc
            raise
        return ObjectInfo(size=int(response["ContentLength"]), etag=str(response.get("ETag", "")).strip('"'),
                          content_type=response.get("ContentType"), last_modified=response.get("LastModified"))

    def read_head(self, location: S3Location, length: int = 4096) -> bytes:
        response = self.client.get_object(Bucket=location.bucket, Key=location.key, Range=f"bytes=0-{length - 1}")
        return response["Body"].read()

    def presigned_get(self, location: S3Location, expires_in: int = 3600) -> str:
        url = self.hook.generate_presigned_url(
            "get_object", params={"Bucket": location.bucket, "Key": location.key}, expires_in=expires_in
        )
        if not url:
            raise RuntimeError(f"could not presign {location.uri}")
        return url

    def presigned_put(self, key: str, content_type: str, content_length: int, expires_in: int) -> str:
        """A URL that lets its holder PUT exactly this key, with exactly this type and size, until it expires.

        Signature V4, so Content-Type and Content-Length are signed headers: S3 refuses a PUT that sends
        another type or size. (Botocore's default for presigning can be V2, which signs neither.)
        """
        return self.presigning_client.generate_presigned_url(
            "put_object", ExpiresIn=expires_in, HttpMethod="PUT",
            Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type,
                    "ContentLength": content_length},
        )

    # Multipart uploads (sources above a single PUT's 5 GB) ------------------------------------------------
    def create_multipart(self, key: str, content_type: str) -> str:
        """Start an S3 multipart upload of ``key``; returns its UploadId."""
        response = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        return str(response["UploadId"])

    def presigned_part(self, key: str, upload_id: str, part_number: int, content_length: int,
                       expires_in: int) -> str:
        """A URL for one UploadPart of exactly ``content_length`` bytes (SigV4 signs the length, as for PUT)."""
        return self.presigning_client.generate_presigned_url(
            "upload_part", ExpiresIn=expires_in, HttpMethod="PUT",
            Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number,
                    "ContentLength": content_length})

    def presigned_parts(self, key: str, upload_id: str, parts: list[tuple[int, int]], expires_in: int) -> list[str]:
        """``presigned_part`` for each (part number, length), fast: 10,000 parts in a fraction of a second.

        Botocore presigns one URL in ≈ 0.2 ms (endpoint rules, serialization, signing: 2 s for S3's 10,000
        parts). The first part is presigned by botocore; the others differ from it only in ``partNumber`` and the
        signed Content-Length, so they are signed from it (:class:`PartUrlTemplate`) — but only if signing the
        first part that way gives botocore's URL exactly; otherwise botocore presigns every part.
        """
        if not parts:
            return []
        (number, length), rest = parts[0], parts[1:]
        first = self.presigned_part(key, upload_id, number, length, expires_in)
        template = PartUrlTemplate.parse(first, frozen_credentials(self.presigning_client))
        if template is None or template.url(number, length) != first:
            log.warning("Presigning %d parts one by one: botocore's URL is not the SigV4 form expected", len(parts))
            return [first, *(self.presigned_part(key, upload_id, n, size, expires_in) for n, size in rest)]
        return [first, *(template.url(n, size) for n, size in rest)]

    def list_parts(self, key: str, upload_id: str) -> list[dict]:
        """The parts S3 has received: PartNumber, ETag (unquoted) and Size, in part order."""
        parts: list[dict] = []
        for page in self.client.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=key,
                                                                     UploadId=upload_id):
            parts += [{"PartNumber": int(p["PartNumber"]), "ETag": str(p["ETag"]).strip('"'), "Size": int(p["Size"])}
                      for p in page.get("Parts", [])]
        return sorted(parts, key=lambda p: p["PartNumber"])

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> str:
        """Assemble the object from (part number, ETag) pairs; returns the object's ETag."""
        response = self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in parts]})
        return str(response.get("ETag", "")).strip('"')

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and the parts S3 stored for it (idempotent)."""
        from botocore.exceptions import ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) not in ("NoSuchUpload", *MISSING_CODES):
                raise

    def list_multipart_uploads(self, prefix: str) -> list[dict]:
        """Unfinished multipart uploads under ``prefix``: Key, UploadId, Initiated."""
        found: list[dict] = []
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket,
                                                                                 Prefix=prefix):
            found += page.get("Uploads", [])
        return found

    def put_json(self, key: str, text: str) -> None:
        """A small private record (an upload grant): JSON, never cached."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"),
                               ContentType="application/json", CacheControl="no-store")

    def delete_key(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    @cached_property
    def presigning_client(self):
        """One client for presigned URLs, SigV4 (botocore's default for presigning can be V2, which signs neither
        Content-Type nor Content-Length), built once: a client takes ≈ 0.2 s to build, and building one per part
        made a 10 GiB grant (640 parts) take minutes."""
        from botocore.config import Config

        base = self.hook.config or Config()
        return self.hook.get_client_type(config=base.merge(Config(signature_version="s3v4")))

    def list_objects(self, prefix: str) -> list[dict]:
        """Every object under ``prefix`` with its Key, ETag (unquoted), Size and LastModified."""
        paginator = self.client.get_paginator("list_objects_v2")
        found: list[dict] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                found.append({**obj, "ETag": str(obj.get("ETag", "")).strip('"')})
        return found

    def upload_source(self, path: str, key: str) -> str:
        """Put a local video into this bucket as a source (what an app's upload does); returns its s3:// URI."""
        self.client.upload_file(path, self.bucket, key, Config=self.hook.transfer_config,
                                ExtraArgs={"ContentType": content_type(key)})
        return S3Location(self.bucket, key).uri

    def download(self, location: S3Location, path: str) -> str:
        self.client.download_file(location.bucket, location.key, path, Config=self.hook.transfer_config)
        return path

    # Published media ---------------------------------------------------------------------------------------
    def upload_file(self, path: str, key: str, disposition: str | None = None) -> int:
        """``disposition``: a Content-Disposition (a download's file name) stored on the object."""
        extra = {"ContentType": content_type(key), "CacheControl": IMMUTABLE_CACHE_CONTROL}
        if disposition:
            extra["ContentDisposition"] = disposition
        self.client.upload_file(path, self.bucket, key, Config=self.hook.transfer_config, ExtraArgs=extra)
        return os.path.getsize(path)

    def get_bytes(self, key: str) -> bytes:
        """The whole object at ``key`` in this bucket (a playlist, a segment, a picture); ObjectMissing if none."""
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectMissing(f"There is no object at s3://{self.bucket}/{key}.") from exc
            raise

    def open_object(self, key: str, byte_range: ByteRange | None = None, body: bool = True) -> ObjectRead:
        """Start reading the object at ``key`` (or the bytes ``byte_range`` names): its metadata now, its bytes
        as the caller iterates :meth:`ObjectRead.chunks` — never the whole object in memory. ``body=False``: the
        metadata only (HEAD). ObjectMissing if there is none; RangeNotSatisfiable if the range starts past its
        end."""
        from botocore.exceptions import ClientError

        extra = {"Range": byte_range.header} if byte_range else {}
        try:
            found = (self.client.get_object if body else self.client.head_object)(Bucket=self.bucket, Key=key,
                                                                                  **extra)
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectMissing(f"There is no object at s3://{self.bucket}/{key}.") from exc
            if str(exc.response.get("Error", {}).get("Code")) in ("InvalidRange", "416"):
                raise RangeNotSatisfiable(self.head_key(key).size) from exc
            raise
        length = int(found["ContentLength"])
        content_range = found.get("ContentRange")  # "bytes a-b/size" when S3 answered a range
        if content_range:
            span, _, total = content_range.removeprefix("bytes ").partition("/")
            start, size = int(span.partition("-")[0]), int(total)
        else:
            start, size = 0, length
        return ObjectRead(size=size, start=start, length=length, etag=found.get("ETag"),
                          last_modified=found.get("LastModified"), disposition=found.get("ContentDisposition"),
                          body=found.get("Body"), partial=bool(content_range))

    def head_key(self, key: str) -> ObjectInfo:
        """Size, ETag and type of the object at ``key`` in this bucket; ObjectMissing if there is none."""
        from botocore.exceptions import ClientError

        try:
            return self.head(S3Location(self.bucket, key))
        except BadInput as exc:
            raise ObjectMissing(f"There is no object at s3://{self.bucket}/{key}.") from exc
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectMissing(f"There is no object at s3://{self.bucket}/{key}.") from exc
            raise

    def copy_key(self, source_key: str, key: str) -> None:
        """A server-side copy within the bucket; the object's Content-Type and Cache-Control go with it."""
        self.client.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source_key})

    def put_text(self, key: str, text: str, cache_control: str = IMMUTABLE_CACHE_CONTROL) -> None:
        """``cache_control``: ``layout.NO_CACHE`` for what is rewritten in place (an EVENT playlist)."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"),
                               ContentType=content_type(key), CacheControl=cache_control)

    def upload_tree(self, local_dir: str, key_prefix: str, exclude: tuple[str, ...] = (),
                    skip: Collection[str] = ()) -> list[str]:
        """Upload every file under ``local_dir`` to ``key_prefix`` in parallel; returns the keys (those in
        ``skip``, already uploaded, e.g. by early playback, included but not uploaded again)."""
        files = [p for p in sorted(Path(local_dir).rglob("*")) if p.is_file() and p.name not in exclude]
        keys = [key_prefix + p.relative_to(local_dir).as_posix() for p in files]
        todo = [(str(p), k) for p, k in zip(files, keys, strict=True) if k not in skip]
        with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
            list(pool.map(self.upload_file, [p for p, _ in todo], [k for _, k in todo]))
        return keys

    def list_keys(self, prefix: str) -> list[str]:
        return [obj["Key"] for obj in self.list_objects(prefix)]

    def delete_prefix(self, prefix: str) -> int:
        if not prefix or not prefix.endswith("/"):
            raise ValueError(f"refusing to delete a prefix that is not a folder: {prefix!r}")
        keys = self.list_keys(prefix)
        for start in range(0, len(keys), 1000):
            self.hook.delete_objects(self.bucket, keys[start : start + 1000])
        if keys:
            log.info("Deleted %d objects under s3://%s/%s", len(keys), self.bucket, prefix)
        return len(keys)

    def download_tree(self, prefix: str, local_dir: str) -> list[str]:
        paths: list[str] = []
        for key in self.list_keys(prefix):
            target = Path(local_dir, key[len(prefix):])
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(self.bucket, key, str(target))
            paths.append(str(target))
        return paths
