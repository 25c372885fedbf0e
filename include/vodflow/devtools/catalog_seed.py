"""Seed a migrated Postgres catalog with N videos in SQL (``INSERT … SELECT generate_series``), for
bench/catalog_scale.py and the plan regression test (tests/integration/catalog/test_catalog_scale.py): the server
builds the rows itself, so a million videos take minutes, not hours.

What a year of uploads looks like: ``created_at`` spread evenly over the last 365 days (newest last); 97 % ready,
2.5 % failed (an error code each), the newest 0.02 % still active (queued/probing/transcoding/publishing); titles of
four words from ``WORDS`` (each word in about 4 % of titles) and one video in 2,000 with the rare word ``aurora``;
per video one version (published when ready), 4 renditions, 2 outputs, 8 events (queued, probed, planned, one
``encoded`` per rendition, the final status).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

_VOCABULARY = ("sunset ocean mountain river forest city night morning coffee recipe tutorial review travel vlog music "
         "concert guitar piano drums dance football tennis soccer basketball lecture physics history math science "
         "garden kitchen bread pasta cake winter summer autumn spring rain snow storm desert island bridge train "
         "plane car bike running yoga interview podcast trailer teaser gameplay speedrun unboxing repair design "
         "painting drawing camera drone timelapse wedding birthday family puppy kitten horse bird whale volcano "
         "castle museum market festival parade lesson chapter episode finale highlights")
WORDS = tuple(_VOCABULARY.split())
RARE_WORD = "aurora"
RENDITIONS = (("1080p", 1920, 1080, 5000), ("720p", 1280, 720, 2800), ("480p", 854, 480, 1400),
              ("360p", 640, 360, 800))
ACTIVE = ("queued", "probing", "transcoding", "publishing")
ERRORS = ("source_unreadable", "source_missing", "encode_failed", "timeout")


def _words_sql() -> str:
    return "(ARRAY[" + ",".join(f"'{w}'" for w in WORDS) + "])"


def seed(engine: sa.Engine, n: int, log=print) -> float:
    """Insert ``n`` videos and their rows into an empty migrated catalog; returns the seconds it took.

    Foreign-key triggers are skipped while seeding (``session_replication_role = replica``, superuser): every row
    is made consistent by construction; the checks would only double the time."""
    started = time.monotonic()
    words, nw = _words_sql(), len(WORDS)
    # One CTE describes video i: its status, times and id; the tables are filled from it in turn.
    video = f"""
      SELECT i,
             'vid_' || substr(md5(i::text), 1, 20) AS id,
             CASE WHEN i > {n} - greatest({n} / 5000, 4) THEN (ARRAY{list(ACTIVE)})[1 + i % 4]
                  WHEN i % 40 = 7 THEN 'failed' ELSE 'ready' END AS status,
             now() - make_interval(secs => ({n} - i) * (365.0 * 86400 / {n})) AS created_at
      FROM generate_series(1, {n}) AS i"""
    steps = [
        ("videos", f"""
        INSERT INTO videos (id, source_uri, source_etag, source_size, title, status, error_code, error_message,
                            duration, width, height, fps, has_audio, video_codec, audio_codec, ladder_version,
                            current_version, latest_version, master_uri, poster_uri, dag_run_id, source_uploaded_at,
                            request, created_at, updated_at, started_at, finished_at)
        SELECT v.id, 's3://vodflow/uploads/' || v.id || '/clip.mp4', md5(v.id), 50000000 + hashint4(v.i) % 40000000,
               {words}[1 + abs(hashint4(v.i * 4)) % {nw}] || ' ' || {words}[1 + abs(hashint4(v.i * 4 + 1)) % {nw}]
                 || ' ' || {words}[1 + abs(hashint4(v.i * 4 + 2)) % {nw}] || ' '
                 || CASE WHEN v.i % 2000 = 3 THEN '{RARE_WORD}' ELSE {words}[1 + abs(hashint4(v.i * 4 + 3)) % {nw}] END,
               v.status,
               CASE WHEN v.status = 'failed' THEN (ARRAY{list(ERRORS)})[1 + v.i % 4] END,
               CASE WHEN v.status = 'failed' THEN 'ffmpeg exited with status 1' END,
               60 + v.i % 1200, 1920, 1080, 30, true, 'h264', 'aac', 1,
               CASE WHEN v.status = 'ready' THEN 1 END, 1,
               CASE WHEN v.status = 'ready' THEN 's3://vodflow/videos/' || v.id || '/v1/hls/master.m3u8' END,
               CASE WHEN v.status = 'ready' THEN 's3://vodflow/videos/' || v.id || '/v1/thumbs/poster.jpg' END,
               'manual__' || v.id, v.created_at, '{{"ladder": "default"}}', v.created_at,
               v.created_at + interval '5 minutes', v.created_at + interval '5 seconds',
               CASE WHEN v.status IN ('ready', 'failed')
                    THEN v.created_at + make_interval(secs => 65 + v.i % 600) END
        FROM ({video}) AS v"""),
        ("video_versions", f"""
        INSERT INTO video_versions (video_id, version, dag_run_id, status, ladder_version, created_at, published_at)
        SELECT v.id, 1, 'manual__' || v.id,
               CASE v.status WHEN 'ready' THEN 'published' WHEN 'failed' THEN 'failed' ELSE 'building' END,
               1, v.created_at, CASE WHEN v.status = 'ready' THEN v.created_at + interval '5 minutes' END
        FROM ({video}) AS v"""),
        ("renditions", f"""
        INSERT INTO renditions (video_id, version, name, width, height, video_kbps, audio_kbps, bandwidth,
                                average_bandwidth, codecs, frame_rate, status, progress, bytes, segments,
                                playlist_uri, updated_at, codec, dynamic_range)
        SELECT v.id, 1, r.name, r.w, r.h, r.kbps, 128, r.kbps * 1100, r.kbps * 1000, 'avc1.640028,mp4a.40.2', 30,
               CASE v.status WHEN 'ready' THEN 'done' WHEN 'failed' THEN 'failed' ELSE 'running' END,
               CASE v.status WHEN 'ready' THEN 100 WHEN 'failed' THEN 0 ELSE 42 END,
               CASE WHEN v.status = 'ready' THEN r.kbps * 125 * (60 + v.i % 1200) END,
               CASE WHEN v.status = 'ready' THEN (60 + v.i % 1200) / 6 END,
               CASE WHEN v.status = 'ready' THEN 's3://vodflow/videos/' || v.id || '/v1/hls/' || r.name || '.m3u8' END,
               v.created_at + interval '5 minutes', 'h264', 'SDR'
        FROM ({video}) AS v CROSS JOIN (VALUES {", ".join(f"('{a}', {b}, {c}, {d})" for a, b, c, d in RENDITIONS)})
             AS r(name, w, h, kbps)"""),
        ("version_outputs", f"""
        INSERT INTO version_outputs (video_id, version, kind, name, key, bytes, content_type, duration, codecs,
                                     filename)
        SELECT v.id, 1, o.kind, o.name, 'videos/' || v.id || '/v1/' || o.path, o.size, o.ctype, 60 + v.i % 1200,
               NULL, NULL
        FROM ({video}) AS v CROSS JOIN (VALUES
                 ('hls', 'master', 'hls/master.m3u8', 900, 'application/vnd.apple.mpegurl'),
                 ('mp4', '720p', 'mp4/720p.mp4', 90000000, 'video/mp4'))
             AS o(kind, name, path, size, ctype)
        WHERE v.status = 'ready'"""),
        ("video_events", f"""
        INSERT INTO video_events (video_id, at, kind, detail)
        SELECT v.id, v.created_at + make_interval(secs => e.k * 30), e.kind,
               CASE e.kind
                 WHEN 'status' THEN CASE WHEN e.k = 0 THEN '{{"status": "queued", "version": 1}}'
                                         ELSE '{{"status": "' || v.status || '", "version": 1}}' END
                 WHEN 'probed' THEN '{{"duration": ' || (60 + v.i % 1200) || ', "width": 1920, "height": 1080}}'
                 WHEN 'planned' THEN '{{"version": 1, "renditions": ["1080p", "720p", "480p", "360p"]}}'
                 ELSE '{{"rendition": "' || e.name || '", "seconds": ' || (20 + v.i % 300) || '.5'
                      || ', "realtime_factor": ' || round((60 + v.i % 1200) / (20.5 + v.i % 300), 3)
                      || ', "bytes": ' || (e.kbps * 125 * (60 + v.i % 1200)) || '}}'
               END
        FROM ({video}) AS v CROSS JOIN (VALUES (0, 'status', NULL, 0), (1, 'probed', NULL, 0),
                                               (2, 'planned', NULL, 0), (3, 'encoded', '1080p', 5000),
                                               (4, 'encoded', '720p', 2800), (5, 'encoded', '480p', 1400),
                                               (6, 'encoded', '360p', 800), (7, 'status', NULL, 0))
             AS e(k, kind, name, kbps)
        WHERE e.kind <> 'encoded' OR v.status <> 'failed'
        ORDER BY v.i, e.k"""),
    ]
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # this transaction only
        for table, sql in steps:
            t0 = time.monotonic()
            rows = conn.exec_driver_sql(sql.replace("%", "%%")).rowcount
            log(f"  seeded {table}: {rows:,} rows in {time.monotonic() - t0:.1f} s")
        if sa.inspect(conn).has_table("video_status_deltas"):  # what the triggers (off while seeding) keep
            conn.exec_driver_sql("INSERT INTO video_status_deltas (status, n) SELECT status, count(*) FROM videos "
                                 "GROUP BY status")
        if sa.inspect(conn).has_table("metric_totals"):  # what publish would have kept (revision 0009 on)
            conn.exec_driver_sql(
                "UPDATE metric_totals SET value = value + (SELECT coalesce(sum(r.bytes), 0) FROM renditions r "
                "JOIN video_versions v ON v.video_id = r.video_id AND v.version = r.version "
                "WHERE v.status = 'published') WHERE name = 'published_bytes'")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        t0 = time.monotonic()
        conn.exec_driver_sql("VACUUM ANALYZE")  # what autovacuum does to a table this size before long
        log(f"  VACUUM ANALYZE in {time.monotonic() - t0:.1f} s")
    return time.monotonic() - started
