"use strict";
(() => {
  const { el, api } = vodflow;
  const $ = (id) => document.getElementById(id);
  const query = new URLSearchParams(location.search);
  let video = null;
  let playing = null;
  let playingDash = null;
  let stream = null;
  let chosenCodec = ""; // "": every codec (the combined master / DASH); else that codec's own master

  // Codec names come from the API's registry (h264, av1, hevc); anything else is shown as it is, as text.
  const CODEC_LABELS = { h264: "H.264", av1: "AV1", hevc: "HEVC" };
  const codecLabel = (codec) => CODEC_LABELS[codec] || String(codec);
  const codecOf = (r) => r.codec || "h264";
  // "AV1: 1.9 MB, −52 % vs H.264": a codec's ladder against H.264's, like for like: each codec's CMAF video
  // tracks once published (video_bytes_by_codec); before, only each codec's bytes as encoded (H.264's TS carries
  // its audio, the other codecs' tracks do not), without a saving.
  let videoBytes = null;
  function codecBytes(v, codec) {
    const published = videoBytes && videoBytes[codec] != null && videoBytes.h264 != null;
    const bytes = published ? videoBytes[codec] : (v.bytes_by_codec || {})[codec];
    const base = published ? videoBytes.h264 : null;
    let text = `${codecLabel(codec)}: ${vodflow.bytes(bytes)}`;
    if (codec !== "h264" && bytes != null && base) {
      const change = Math.round((bytes / base - 1) * 100);
      text += `, ${change < 0 ? "\u2212" : "+"}${Math.abs(change)} % vs H.264`;
    }
    return text;
  }
  function renditionRow(v, r) {
    return el("tr", { "data-rendition": r.name, "data-codec": codecOf(r) },
      el("td", { text: r.name }), el("td", { text: `${r.width}×${r.height}` }),
      el("td", { class: "num", text: r.bandwidth ? `${Math.round(r.average_bandwidth / 1000)} kbps avg · ${Math.round(r.bandwidth / 1000)} peak` : `${r.video_kbps} kbps target` }),
      el("td", {}, el("code", { text: r.codecs || "–" })),
      el("td", { "data-range": "", text: r.dynamic_range || "SDR" }),
      el("td", {}, vodflow.bar(r.progress, r.status), ` ${r.progress.toFixed(0)} %`),
      el("td", {}, vodflow.badge(r.status)), el("td", { class: "num", text: vodflow.bytes(r.bytes) }),
      el("td", { class: "num", "data-vmaf": "", text: r.vmaf == null ? "–" : `${r.vmaf.toFixed(1)} (${r.vmaf_p5.toFixed(1)})` }),
      el("td", {}, v.dag_run_id ? el("a", { target: "_top", text: "log",
        href: vodflow.airflow(`/dags/transcode_video/runs/${encodeURIComponent(v.dag_run_id)}/tasks/transcode`) }) : ""));
  }
  // One group per codec (H.264 first), headed by its bytes and saving; a video in H.264 alone: the plain list.
  function renderRenditions(v) {
    const codecs = v.codecs && v.codecs.length ? v.codecs : ["h264"];
    const grouped = codecs.length > 1;
    const rows = [];
    for (const codec of codecs) {
      if (grouped) rows.push(el("tr", { class: "codec-group", "data-codec": codec }, el("th", { colspan: "10", text: codecBytes(v, codec) })));
      rows.push(...v.renditions.filter((r) => codecOf(r) === codec).map((r) => renditionRow(v, r)));
    }
    $("renditions").replaceChildren(...rows);
    $("codec-bytes").hidden = !grouped;
    const basis = videoBytes && videoBytes.h264 != null ? "Video bytes per codec (CMAF tracks)" : "Bytes per codec, as encoded";
    $("codec-bytes").textContent = grouped ? `${basis}: ${codecs.map((c) => codecBytes(v, c)).join(" · ")}` : "";
  }

  function renderVideo(v) {
    video = v;
    document.title = `${v.title || v.id} · vodflow`;
    $("title").textContent = v.title || v.id;
    // Only what is known: a video refused before it was probed has no duration or size, and none was published.
    const published = v.current_version == null ? "not published"
      : `version ${v.current_version} published${v.latest_version !== v.current_version ? `, ${v.latest_version} latest` : ""}`;
    const facts = [v.duration == null ? null : vodflow.duration(v.duration), v.width ? `${v.width}×${v.height}` : null,
                   v.fps ? `${v.fps} fps` : null, published].filter((fact) => fact != null);
    const where = vodflow.queueNote(v);
    $("summary").replaceChildren(vodflow.badge(v.status), " ", el("code", { text: v.id }), ` · ${facts.join(" · ")}`,
      ...(where ? [" · ", el("span", { "data-queue": "", text: where })] : []));
    $("source").replaceChildren(...(v.source_uri ? ["Source ", el("code", { text: v.source_uri })] : []));
    $("error").textContent = v.error_message ? `${v.error_code}: ${v.error_message}` : "";
    const active = ["queued", "probing", "transcoding", "publishing"].includes(v.status);
    // The API says when a retry cannot help (bad input in the source itself): then the reason, not a button.
    const failed = v.status === "failed" || (v.error_code && !active);
    $("retry").hidden = !failed || v.retry_refusal != null;
    $("retry-note").textContent = failed && v.retry_refusal ? v.retry_refusal : "";
    $("delete").disabled = active;
    $("delete").title = active ? "A video is deleted when its run has ended." : "";
    if (v.dag_run_id) $("run-link").href = vodflow.airflow(`/dags/transcode_video/runs/${encodeURIComponent(v.dag_run_id)}`);
    renderRenditions(v);
    if (v.poster_url) $("player").poster = v.poster_url;
    if (v.downloads) renderOutputs(v);
    else if (v.status === "ready" && v.current_version !== shownVersion) refreshOutputs(v.id);
    // No player for a video with nothing to play: an empty black box would claim there is something to play.
    // While the first version is encoded it may be playable already (its early playlists): from the start; once
    // it is published, the published master takes over where the early one was.
    const url = v.master_url || (active ? v.playable_url : null);
    $("player").hidden = !url;
    if (!chosenCodec && url && url !== playing) play(url, undefined, url !== v.master_url);
    if (!url) $("player-note").textContent = active ? "Nothing published yet." : "Not published.";
  }

  // Downloads and the storyboard come with the full video (GET /api/videos/{id}), not with every SSE snapshot.
  let shownVersion = null;
  let storyboard = null;
  function renderOutputs(v) {
    shownVersion = v.current_version;
    videoBytes = v.video_bytes_by_codec || null;
    renderRenditions(video || v);
    renderCodecChoice(v);
    if (!chosenCodec && v.dash_url && v.dash_url !== playingDash) play(v.master_url, v.dash_url);
    $("downloads-box").hidden = !v.downloads.length;
    $("downloads").replaceChildren(...v.downloads.map((d) => el("li", {},
      el("a", { href: d.url, download: d.filename || "", text: d.kind === "audio" ? d.name.toUpperCase() : `${d.kind === "webm" ? "WebM" : "MP4"} ${d.name}` }),
      el("span", { class: "muted", text: ` ${vodflow.bytes(d.bytes)}${d.codecs ? ` · ${d.codecs}` : ""}` }))));
    if (v.storyboard_url !== storyboard) {
      storyboard = v.storyboard_url;
      vodflowStoryboard.attach($("player"), storyboard).catch(() => {});
    }
  }
  // Each codec's own ladder (its CMAF master: that codec's variants and the shared audio), played by hls.js; a
  // codec this browser cannot decode is listed but disabled (Chromium on Linux decodes HEVC only with hardware).
  function renderCodecChoice(v) {
    const masters = v.cmaf_master_urls || {};
    const codecs = Object.keys(masters);
    const select = $("codec-select");
    select.replaceChildren(el("option", { value: "", text: v.dash_url ? "Every codec (DASH)" : "Every codec" }),
      ...codecs.map((codec) => {
        const decodable = canDecode(v, codec);
        const option = el("option", { value: codec, text: `${codecLabel(codec)} ladder${decodable ? "" : " (this browser cannot decode it)"}` });
        option.disabled = !decodable;
        return option;
      }));
    select.value = codecs.includes(chosenCodec) ? chosenCodec : "";
    select.hidden = !codecs.length;
    for (const label of select.labels) label.hidden = select.hidden;
    select.onchange = () => {
      chosenCodec = select.value;
      if (chosenCodec) playCodec(codecLabel(chosenCodec), masters[chosenCodec]);
      else play(video.master_url, video.dash_url);
    };
  }
  function canDecode(v, codec) {
    if (!window.MediaSource) return true; // Safari plays HLS itself: let it try
    const strings = v.renditions.filter((r) => codecOf(r) === codec && r.codecs).map((r) => r.codecs.split(",")[0]);
    return !strings.length || strings.some((c) => MediaSource.isTypeSupported(`video/mp4; codecs="${c.replace(/"/g, "")}"`));
  }
  function playCodec(label, url) {
    playing = url;
    playingDash = null;
    vodflowPlayer.attach($("player"), url, { audioSelect: $("audio-track"), note: $("player-note") });
    $("player-note").textContent = `Playing version ${video.current_version}, the ${label} ladder.`;
    $("player").play().catch(() => {});
  }
  async function refreshOutputs(id) {
    shownVersion = video.current_version;
    try { renderOutputs(await api(`videos/${encodeURIComponent(id)}`)); } catch (error) { /* shown on the next load */ }
  }

  // DASH (the cmaf output) when the video has it: its URL comes with the full video, so the player may switch once.
  // early: the first version's early playlists (EVENT: growing while it is encoded), played from 0; a switch
  // (to the published master when it is ready, to DASH) goes on where the player was.
  let playingEarly = false;
  // Early playlists list the first 6 s as three 2 s pieces (a player can start after the first: the API's
  // playable). Near the end of what is encoded, hls.js fetches the next piece late and waits at the end of what it
  // has (seen: at 1.97 s for 2-4 s): the page starts once the three pieces are buffered (6 s, less the audio a
  // cut leaves to the next piece), or the playlist is complete, so playback stays ahead of the encode.
  const EARLY_START_SECONDS = 5.5;
  function play(url, dash, early = false) {
    const player = $("player");
    const startPosition = early ? 0 : (playing ? player.currentTime : undefined); // a switch keeps the position
    const handOver = playingEarly && !early; // the early player hands its buffer to the published master's
    playingEarly = early;
    playing = url;
    playingDash = dash || null;
    $("player-note").textContent = early ? `Playing version ${video.latest_version} while it is encoded.`
      : `Playing version ${video.current_version}${dash ? " (DASH)" : ""}.`;
    const hls = vodflowPlayer.attach(player, url, { audioSelect: $("audio-track"), textSelect: $("text-track"),
                                                    note: $("player-note"), dash, startPosition, handOver });
    if (!early || !hls) { player.play().catch(() => {}); return; }
    let complete = false;
    const ahead = () => { // buffered from 0, across holes of less than a quarter second (hls.js jumps those)
      const ranges = player.buffered;
      let end = 0;
      for (let i = 0; i < ranges.length; i++) if (ranges.start(i) <= end + 0.25) end = Math.max(end, ranges.end(i));
      return end;
    };
    const start = (event, data) => {
      if (event === Hls.Events.LEVEL_LOADED) complete = complete || !data.details.live;
      if (!complete && ahead() < EARLY_START_SECONDS) return;
      hls.off(Hls.Events.LEVEL_LOADED, start);
      hls.off(Hls.Events.FRAG_BUFFERED, start);
      player.play().catch(() => {});
    };
    hls.on(Hls.Events.LEVEL_LOADED, start);
    hls.on(Hls.Events.FRAG_BUFFERED, start);
  }

  function addEvent(e) {
    if (e.id <= lastEvent) return;
    lastEvent = e.id;
    const detail = Object.entries(e.detail || {}).map(([k, v]) => `${k}=${describe(v)}`).join(" ");
    $("events").prepend(el("tr", {}, el("td", { class: "muted", text: new Date(e.at).toLocaleString() }),
                           el("td", { text: e.kind }), el("td", {}, el("code", { text: detail }))));
  }

  // An event's detail as text an operator reads: strings as they are (a track title with quotes shows its quotes,
  // not JSON's escapes), lists and objects spelled out. Put into the page as text, never as HTML.
  function describe(value) {
    if (Array.isArray(value)) return `[${value.map(describe).join(", ")}]`;
    if (value && typeof value === "object") return `(${Object.entries(value).map(([k, v]) => `${k}=${describe(v)}`).join(" ")})`;
    return String(value);
  }

  let lastEvent = 0;
  function follow(id) {
    if (stream) stream.close();
    stream = new EventSource(`../api/videos/${encodeURIComponent(id)}/events?after=${lastEvent}`);
    stream.addEventListener("video", (m) => renderVideo(JSON.parse(m.data)));
    stream.addEventListener("history", (m) => addEvent(JSON.parse(m.data)));
    stream.addEventListener("end", () => { stream.close(); stream = null; });
  }

  async function load() {
    let id = query.get("id");
    if (!id && query.get("run_id")) {
      const found = await api(`videos?run_id=${encodeURIComponent(query.get("run_id"))}`);
      if (!found.videos.length) { $("title").textContent = "No video belongs to this run."; return; }
      id = found.videos[0].id;
    }
    const v = await api(`videos/${encodeURIComponent(id)}`);
    $("events").replaceChildren();
    for (const e of v.events) addEvent(e);
    renderVideo(v);
    follow(id);
  }

  $("retry").addEventListener("click", async () => {
    try {
      const r = await api(`videos/${encodeURIComponent(video.id)}/retry`, { method: "POST" });
      $("action").textContent = `Retrying: run ${r.dag_run_id}`;
      setTimeout(() => follow(video.id), 1000);
    } catch (error) { $("action").textContent = `Retry refused: ${error.message}`; }
  });
  $("delete").addEventListener("click", async () => {
    if (!confirm(`Delete "${video.title || video.id}"? Its published media and history are removed; the upload stays.`)) return;
    try {
      await api(`videos/${encodeURIComponent(video.id)}`, { method: "DELETE" });
      location.href = "videos";
    } catch (error) { $("action").textContent = `Delete refused: ${error.message}`; }
  });
  load().catch((error) => { $("title").textContent = `Could not load the video: ${error.message}`; });
})();
