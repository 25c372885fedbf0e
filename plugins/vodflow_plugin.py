"""The vodflow Airflow plugin: its JSON API and pages, mounted in Airflow's api-server under /vodflow."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from vodflow.web.api import app
from vodflow.web.conf_guard import UnknownConfKeys


class VodflowPlugin(AirflowPlugin):
    name = "vodflow"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [{"app": app, "url_prefix": "/vodflow", "name": "vodflow"}]
    # Airflow's own trigger endpoint lets unknown conf keys through: this answers them with a 400 first.
    fastapi_root_middlewares: ClassVar[list[dict[str, Any]]] = [
        {"middleware": UnknownConfKeys, "name": "vodflow: refuse unknown transcode_video conf keys"}]
    external_views: ClassVar[list[dict[str, Any]]] = [
        # A "Videos" entry in the Airflow nav, and a tab on every DAG run (the page says when a run has no video).
        {"name": "Videos", "href": "vodflow/ui/videos", "url_route": "videos", "destination": "nav",
         "category": "browse"},
        {"name": "Video", "href": "vodflow/ui/video?dag_id={DAG_ID}&run_id={RUN_ID}", "url_route": "video",
         "destination": "dag_run"},
    ]
