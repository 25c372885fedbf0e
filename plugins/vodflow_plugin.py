"""The vodflow Airflow plugin: its JSON API and pages, mounted in Airflow's api-server under /vodflow."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from vodflow.web.api import app
from vodflow.web.conf_guard import TriggerConfGuard


class VodflowPlugin(AirflowPlugin):
    name = "vodflow"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [{"app": app, "url_prefix": "/vodflow", "name": "vodflow"}]
    # Airflow's own trigger endpoint checks only the Params schemas: this checks the conf as the plugin's does first.
    fastapi_root_middlewares: ClassVar[list[dict[str, Any]]] = [
        {"middleware": TriggerConfGuard, "name": "vodflow: check transcode_video confs as POST /vodflow/api/videos"}]
    external_views: ClassVar[list[dict[str, Any]]] = [
        # A "Videos" entry in the Airflow nav, and a tab on every DAG run (the page says when a run has no video).
        {"name": "Videos", "href": "vodflow/ui/videos", "url_route": "videos", "destination": "nav",
         "category": "browse"},
        {"name": "Video", "href": "vodflow/ui/video?dag_id={DAG_ID}&run_id={RUN_ID}", "url_route": "video",
         "destination": "dag_run"},
    ]
