"""
### cleanup_uploads — abort multipart uploads nobody finished

An app that starts a multipart upload and never completes or aborts it leaves parts in S3 that cost storage
and never become an object. Hourly, uploads under `uploads/` older than `upload_abort_after_hours` (24) are
aborted and their grants removed. (On AWS an `AbortIncompleteMultipartUpload` lifecycle rule does the same;
this works on any S3, MinIO included.) The logic lives in `include/vodflow/triggers/multipart.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(schedule="@hourly", start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1, tags=["vodflow"],
     doc_md=__doc__, default_args={"retries": 2, "retry_delay": timedelta(minutes=5)})
def cleanup_uploads() -> None:
    @task
    def abort_stale_uploads() -> int:
        from vodflow.settings import load_settings
        from vodflow.storage import Storage
        from vodflow.triggers.multipart import abort_stale

        settings = load_settings()
        return abort_stale(Storage(settings.aws_conn_id, settings.bucket),
                           timedelta(hours=settings.upload_abort_after_hours))

    abort_stale_uploads()


cleanup_uploads()
