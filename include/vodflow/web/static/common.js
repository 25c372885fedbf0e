// Shared helpers for the vodflow pages. Every value from the API is put into the page as text, never as HTML.
"use strict";
const vodflow = {
  api: (path, options) => fetch(`../api/${path}`, { credentials: "same-origin", ...options }).then(async (r) => {
    const body = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
    if (!r.ok) throw new Error(body?.detail || `${r.status} ${r.statusText}`);
    return body;
  }),
  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  },
  badge: (status) => vodflow.el("span", { class: `badge ${status}`, text: status, "data-status": status }),
  bar(progress, status) {
    const bar = vodflow.el("span", { class: `bar ${status}`, role: "progressbar", "aria-valuenow": String(progress),
                                     "aria-valuemin": "0", "aria-valuemax": "100", title: `${progress.toFixed(1)} %` });
    const fill = vodflow.el("span");
    fill.style.width = `${Math.max(0, Math.min(100, progress))}%`;
    bar.append(fill);
    return bar;
  },
  duration: (s) => s == null ? "–" : `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`,
  age(iso) {
    if (!iso) return "–";
    const s = (Date.now() - Date.parse(iso)) / 1000;
    if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  },
  bytes: (n) => n == null ? "–" : n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`,
  // "in ~2 min" for a time from the API (an estimate: rounded, never "ago").
  inAbout(iso) {
    const s = Math.max(0, (Date.parse(iso) - Date.now()) / 1000);
    return s < 60 ? `in ~${Math.max(1, Math.round(s))} s` : s < 5400 ? `in ~${Math.round(s / 60)} min` : `in ~${Math.round(s / 3600)} h`;
  },
  // A video's priority (when not normal) and where it is: its place in line and expected start, or its ETA.
  queueNote(v) {
    const parts = [];
    if (v.priority && v.priority !== "normal") parts.push(`${v.priority} priority`);
    if (v.queue_position != null) parts.push(`#${v.queue_position} in line` + (v.expected_start ? `, starts ${vodflow.inAbout(v.expected_start)}` : ""));
    if (v.eta) parts.push(`done ${vodflow.inAbout(v.eta)}`);
    return parts.join(" · ");
  },
  airflow: (path) => `${location.pathname.split("/vodflow/")[0]}${path}`,
};
