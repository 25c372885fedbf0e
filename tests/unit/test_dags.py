"""The DAG files as the dag-processor sees them: every file in dags/ imports cleanly (no import error, no warning
such as a deprecated Airflow 2 import), every DAG is tagged, and transcode_video sends only its encodes to the
`transcode` queue. No database and no stack: a DagBag fills `.dags` and `.import_errors` from the files alone.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from vodflow.dag_ids import TRANSCODE_VIDEO

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)  # Airflow's deprecations are these
TRANSCODE_QUEUE = "transcode"  # what `make stack` and the Celery deployment start transcode workers with


# The event-driven watcher's DAG exists only with a queue configured: configure one, so it is checked too.
EVENTS_QUEUE = {"AIRFLOW__VODFLOW__UPLOAD_EVENTS_QUEUE": "http://127.0.0.1:9/123456789012/vodflow-upload-events"}


def fill_dagbag(folder: Path, env: dict[str, str]) -> tuple[object, list[warnings.WarningMessage]]:
    """A DagBag of ``folder`` with ``env`` set, and every warning raised while filling it.

    The vodflow library is imported afresh, as a dag-processor does, so a deprecated import anywhere in it warns
    here even when another test imported it first; the modules other tests hold are put back afterwards.
    """
    from airflow.dag_processing.dagbag import DagBag

    saved = {name: module for name, module in sys.modules.items() if name == "vodflow" or name.startswith("vodflow.")}
    for name in saved:
        del sys.modules[name]
    before = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # no "seen once already" and no "ignored by default"
            bag = DagBag(dag_folder=str(folder), safe_mode=False)
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name in [n for n in sys.modules if n == "vodflow" or n.startswith("vodflow.")]:
            del sys.modules[name]
        sys.modules.update(saved)
    return bag, caught


@pytest.fixture(scope="module")
def dagbag() -> Iterator[tuple[object, list[warnings.WarningMessage]]]:
    yield fill_dagbag(DAGS_FOLDER, EVENTS_QUEUE)


def test_every_dag_file_imports_without_errors_or_warnings(dagbag) -> None:
    bag, caught = dagbag
    assert bag.import_errors == {}
    # Warnings raised while a DAG file (and what it imports) loads: the UI shows them on the DAG.
    assert bag.captured_warnings == {}
    deprecations = [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in caught
                    if issubclass(w.category, DEPRECATIONS)]
    assert deprecations == []
    files = sorted(p.name for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))
    assert sorted({Path(dag.fileloc).name for dag in bag.dags.values()}) == files  # every file holds a DAG
    assert TRANSCODE_VIDEO in bag.dags


def test_every_dag_has_tags(dagbag) -> None:
    bag, _ = dagbag
    assert {dag_id: sorted(dag.tags) for dag_id, dag in bag.dags.items() if not dag.tags} == {}


def test_only_the_encodes_go_to_the_transcode_queue(dagbag) -> None:
    from airflow.sdk.configuration import conf
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    bag, _ = dagbag
    dag = bag.dags[TRANSCODE_VIDEO]
    default_queue = conf.get("operators", "default_queue")
    queues = {task.task_id: task.queue for task in dag.tasks}
    assert queues.pop("transcode") == TRANSCODE_QUEUE
    assert isinstance(dag.get_task("transcode"), MappedOperator)  # one task per work item
    assert queues and set(queues.values()) == {default_queue}, queues


def test_each_task_of_a_video_writes_only_the_xcoms_a_later_task_reads(dagbag) -> None:
    """A TaskFlow task returning a dict pushes each key as an XCom of its own as well, unless told not to: 13
    writes a video (an API call, a database row each) that nothing read: a quarter of the api-server's CPU in a
    batch (bench/load.py)."""
    bag, _ = dagbag
    dag = bag.dags[TRANSCODE_VIDEO]
    assert {task.task_id: task.multiple_outputs for task in dag.tasks} == {
        "prepare": False, "transcode": False, "publish": False}


def test_open_runs_and_items_per_run_are_capped_by_settings(dagbag) -> None:
    """Runs beyond the cap wait queued (the scheduler re-examines every open run on every loop), and the cap on
    one run's work items keeps a long video from taking every transcode slot."""
    from vodflow.settings import Settings

    bag, _ = dagbag
    dag = bag.dags[TRANSCODE_VIDEO]
    assert dag.max_active_runs == Settings().max_active_videos
    assert dag.get_task("transcode").max_active_tis_per_dagrun == Settings().max_items_per_video


def test_the_event_driven_watcher_exists_only_with_a_queue(dagbag) -> None:
    bag, _ = dagbag
    dag = bag.dags["watch_upload_events"]
    assert [t.task_id for t in dag.tasks] == ["claim", "start_transcode", "mark_started"]
    [watcher] = [w for asset in dag.schedule for w in asset.watchers]
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath.endswith("SqsSensorTrigger") and kwargs["sqs_queue"] == next(iter(EVENTS_QUEUE.values()))
    assert kwargs["wait_time_seconds"] == 20 and kwargs["waiter_delay"] == 0  # long polls, never sleeps
    without, _ = fill_dagbag(DAGS_FOLDER / "watch_upload_events.py",
                             dict.fromkeys(EVENTS_QUEUE, ""))
    assert without.import_errors == {} and without.dags == {}
