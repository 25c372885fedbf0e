"""The DAG ids the library refers to (the API, the CLI, the demo, the triggering DAGs); the DAG files use them.

Here and not in ``dags/``: the library never imports a DAG file. No imports, so any process can use it.
"""

from __future__ import annotations

TRANSCODE_VIDEO = "transcode_video"
UPLOAD_RUN_PREFIX = "upload__"  # run ids of the runs watch_uploads starts: upload__<video_id>
APP_RUN_PREFIX = "app__"  # run ids of the runs the checked trigger (POST /vodflow/api/videos) starts
