"use strict";
(() => {
  const { el, api } = vodflow;
  const PAGE = 25;
  // Pages by keyset: the last id of each page before this one (``after``), so a page deep in a million videos is
  // as quick as the first and does not shift while new uploads arrive.
  const state = { cursors: [], total: 0 };
  const offset = () => state.cursors.length * PAGE;
  const $ = (id) => document.getElementById(id);

  // H.264's renditions one by one; each other codec's ladder as one line (its renditions' mean progress).
  const CODEC_LABELS = { av1: "AV1", hevc: "HEVC" };
  function renditions(video) {
    const cell = el("div");
    const line = (attrs, label, progress, status) => cell.append(el("div", { class: "rend", ...attrs }, el("label", { text: label }),
      vodflow.bar(progress, status), ` ${progress.toFixed(0)} % `, el("span", { class: "muted", text: status })));
    for (const r of video.renditions) if ((r.codec || "h264") === "h264") line({ "data-rendition": r.name }, r.name, r.progress, r.status);
    for (const codec of (video.codecs || []).filter((c) => c !== "h264")) {
      const rows = video.renditions.filter((r) => r.codec === codec);
      const status = ["failed", "running", "pending", "done"].find((s) => rows.some((r) => r.status === s)) || "pending";
      line({ "data-codec": codec }, CODEC_LABELS[codec] || String(codec), rows.reduce((sum, r) => sum + r.progress, 0) / Math.max(1, rows.length), status);
    }
    return cell;
  }

  function row(video) {
    const link = el("a", { href: `video?id=${encodeURIComponent(video.id)}`, text: video.title || video.id });
    return el("tr", { "data-video": video.id },
      el("td", {}, video.poster_url ? el("img", { class: "thumb", src: video.poster_url, alt: "", loading: "lazy" }) : null,
        link, el("div", { class: "muted" }, el("code", { text: video.id }))),
      el("td", {}, vodflow.badge(video.status),
        // Early playback: the first version can be watched while it is encoded.
        video.playable && video.current_version == null ? el("span", { class: "badge ready", "data-playable": "", text: "playable" }) : null,
        el("div", { class: "muted", "data-queue": "", text: vodflow.queueNote(video) })),
      el("td", { class: "num", text: vodflow.duration(video.duration) }),
      el("td", { text: video.width ? `${video.width}×${video.height}` : "–" }),
      el("td", {}, renditions(video)),
      el("td", { class: "error", text: video.error_message ? `${video.error_code}: ${video.error_message}` : "" }),
      el("td", { class: "muted", text: vodflow.age(video.created_at) }));
  }

  async function refresh() {
    const params = new URLSearchParams({ limit: PAGE });
    if (state.cursors.length) params.set("after", state.cursors[state.cursors.length - 1]);
    if ($("status").value) params.set("status", $("status").value);
    if ($("search").value.trim()) params.set("q", $("search").value.trim());
    try {
      const [page, stats] = await Promise.all([api(`videos?${params}`), api("stats")]);
      state.total = page.total;
      $("rows").replaceChildren(...page.videos.map(row));
      if (!page.videos.length) $("rows").append(el("tr", {}, el("td", { colspan: "7", class: "muted", text: "No videos." })));
      state.last = page.videos.length ? page.videos[page.videos.length - 1].id : null;
      $("page").textContent = page.total ? `${offset() + 1}–${offset() + page.videos.length} of ${page.total_estimated ? "about " : ""}${page.total}` : "";
      $("prev").disabled = state.cursors.length === 0;
      $("next").disabled = page.videos.length < PAGE || offset() + PAGE >= page.total;
      const s = stats.by_status;
      $("stats").replaceChildren(...[
        ["ready", s.ready], ["in progress", stats.active], ["failed", s.failed], ["completed today", stats.completed_today],
        ["failed today", stats.failed_today], ["avg. processing", stats.average_processing_seconds == null ? "–" : `${stats.average_processing_seconds} s`],
        ["tasks waiting", stats.queue_length], ["runs waiting to start", stats.runs_waiting],
      ].map(([label, value]) => el("div", {}, el("b", { text: String(value) }), label)));
      $("live").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      $("live").textContent = `could not refresh: ${error.message}`;
    }
  }

  $("status").addEventListener("change", () => { state.cursors = []; refresh(); });
  let typing;
  $("search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { state.cursors = []; refresh(); }, 250); });
  $("prev").addEventListener("click", () => { state.cursors.pop(); refresh(); });
  $("next").addEventListener("click", () => { if (state.last) { state.cursors.push(state.last); refresh(); } });
  refresh();
  setInterval(refresh, 2000);
})();
