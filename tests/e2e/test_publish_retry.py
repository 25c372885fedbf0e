"""The publish task's process really killed (SIGKILL) after its catalog switch, while it notifies the app, and
retried by Airflow (LocalExecutor, the embedded stack): the video ends `ready` with one complete version, its
subtitles in the master, never `publishing` again, the app told (the same event id every time)."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import m3u8
import pytest

from tests.receivers import Trickler
from vodflow import layout
from vodflow.devtools.conformance import check_tree
from vodflow.devtools.samples import make_subtitled_sample
from vodflow.integrations.webhooks import event_id

pytestmark = pytest.mark.e2e
DAG = "transcode_video"


def pids_connected_to(port: int) -> set[int]:
    """Processes (other than this one) holding an established TCP connection to 127.0.0.1:``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "01" and int(remote.split(":")[1], 16) == port:  # ESTABLISHED, to the receiver's port
            inodes.add(f"socket:[{inode}]")
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                found.add(int(proc.name))
        except OSError:  # gone, or not ours
            continue
    return found


def test_publish_killed_while_notifying_is_retried_and_ends_ready(embedded_stack, tmp_path):
    stack = embedded_stack
    # Holds publish's first `video.ready` delivery and answers the retry's at once; `video.playable` (sent by the
    # encode, before publish) is answered at once.
    hook = Trickler(interval=9.0, slow_requests=1, slow_if=lambda body: b'"video.ready"' in body)
    try:
        video_id = f"killed-{uuid.uuid4().hex[:8]}"
        source = make_subtitled_sample(str(tmp_path / "talk.mkv"), 14.0)
        key = f"uploads/{video_id}/talk.mkv"
        stack.storage.client.upload_file(source, "vodflow", key)
        callback = f"http://localhost:{hook.port}/hooks/slow?token=app-secret-token"  # `localhost` is allowlisted
        run_id = stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "video_id": video_id,
                                            "chunk_seconds": 6, "ladder": ["240p"], "callback_url": callback})
        deadline = time.monotonic() + 600
        while not (hook.slow_seen and (pids := pids_connected_to(hook.port))):  # publish switched, is notifying
            assert time.monotonic() < deadline, "publish never called the receiver"
            time.sleep(0.2)
        assert stack.catalog.get_video(video_id)["status"] == "ready"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        run = stack.client.wait_for_run(DAG, run_id, timeout=600)
        tasks = {t["task_id"]: t for t in stack.client.task_instances(DAG, run_id)}
        summary = [(t["task_id"], t["state"], t["try_number"]) for t in tasks.values()]
        print(f"\nkilled publish (pids {sorted(pids)}); run {run['state']} {time.monotonic() - killed:.0f} s later: "
              f"{summary}")
        assert run["state"] == "success", summary
        assert tasks["publish"]["try_number"] == 2, summary  # the kill cost one try; the retry finished
        video = stack.catalog.get_video(video_id)
        assert (video["status"], video["current_version"], video["error_code"]) == ("ready", 1, None)
        assert [v["status"] for v in stack.catalog.get_versions(video_id)] == ["published"]
        assert stack.storage.list_keys(layout.chunks_prefix(video_id, 1)) == []
        history = stack.catalog.get_events(video_id, limit=5000)
        statuses = [e["detail"]["status"] for e in history if e["kind"] == "status"]
        assert statuses[-1] == "ready" and "publishing" not in statuses[statuses.index("ready"):], statuses
        stack.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path / "out"))
        report = check_tree(tmp_path / "out" / "hls", expected_duration=14.0, expect_audio=True)
        assert report.ok, report.summary()
        master = m3u8.load(str(tmp_path / "out" / "hls" / "master.m3u8"))
        assert [m.language for m in master.media if m.type == "SUBTITLES"] == ["en"]
        # The killed try never recorded its outcome, so the retry sent the same event (same id) once more.
        ready = event_id(video_id, 1, "video.ready")
        playable = event_id(video_id, 1, "video.playable")
        assert [json.loads(body)["id"] for body in hook.bodies] == [playable, ready, ready]
        hooks = [e["detail"] for e in history if e["kind"] == "webhook"]
        assert [(h["event_id"], h["delivered"], h["url"]) for h in hooks] == [
            (playable, True, f"http://localhost:{hook.port}/hooks/slow"),
            (ready, True, f"http://localhost:{hook.port}/hooks/slow")]
        assert "app-secret-token" not in json.dumps(history, default=str)
    finally:
        hook.stop()
