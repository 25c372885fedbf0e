"""S3 clients of one process share botocore's parsed models (vodflow.storage.share_botocore_models)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys, boto3, botocore.loaders, botocore.session
from vodflow.storage import share_botocore_models
if sys.argv[1] == "shared":
    share_botocore_models()
    share_botocore_models()  # a second call keeps the one loader
reads = []
load_file = botocore.loaders.JSONFileLoader.load_file
botocore.loaders.JSONFileLoader.load_file = lambda self, path: reads.append(path) or load_file(self, path)
def client():
    return boto3.session.Session().client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                                          aws_access_key_id="a", aws_secret_access_key="b")
client()  # the worker's warm-up
before = len(reads)
for _ in range(3):
    url = client().generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    assert url.startswith("http://127.0.0.1:9/b/k?"), url
print(len(reads) - before)
"""


def _model_files_read_by_three_more_clients(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHECK, mode], check=True, capture_output=True,  # noqa: S603
                         text=True, timeout=120)
    return int(out.stdout.strip().splitlines()[-1])


def test_after_the_warm_up_no_client_parses_a_model_file_again() -> None:
    """Fresh interpreters, so that no other test has shared the loader: without sharing, every new session reads
    S3's service model and the endpoint rules again (≈0.1–0.17 CPU s a client); shared, none does."""
    assert _model_files_read_by_three_more_clients("per-session") >= 3
    assert _model_files_read_by_three_more_clients("shared") == 0
