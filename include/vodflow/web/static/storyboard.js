// Storyboard previews: a timeline bar under the player; hovering it shows the tile of that moment (from the
// storyboard's WebVTT: "sprite_000.jpg#xywh=x,y,w,h" cues) and the time; a click seeks there.
"use strict";
const vodflowStoryboard = (() => {
  const stamp = (t) => {
    const [h, m, s] = t.split(":");
    return Number(h) * 3600 + Number(m) * 60 + Number(s);
  };

  function parse(text, base) {
    const cues = [];
    for (const block of text.replace(/\r/g, "").split("\n\n")) {
      const lines = block.trim().split("\n");
      const timing = lines.find((l) => l.includes("-->"));
      const payload = lines[lines.indexOf(timing) + 1];
      if (!timing || !payload) continue;
      const [start, end] = timing.split("-->").map((t) => stamp(t.trim()));
      const [file, region] = payload.split("#xywh=");
      const [x, y, w, h] = (region || "").split(",").map(Number);
      cues.push({ start, end, url: new URL(file, base).href, x, y, w, h });
    }
    return cues;
  }

  function format(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  // Shows a preview bar under ``video`` for the storyboard at ``url``; calling it again replaces the old one.
  async function attach(video, url) {
    const old = video.parentElement.querySelector(".storyboard");
    if (old) old.remove();
    if (!url) return null;
    const base = new URL(url, location.href).href;
    const response = await fetch(base, { credentials: "same-origin" });
    if (!response.ok) return null;
    const cues = parse(await response.text(), base);
    if (!cues.length) return null;
    const total = cues[cues.length - 1].end;
    const bar = document.createElement("div");
    bar.className = "storyboard";
    bar.title = "Hover for a preview, click to seek";
    const preview = document.createElement("div");
    preview.className = "storyboard-preview";
    preview.hidden = true;
    const label = document.createElement("span");
    preview.append(label);
    bar.append(preview);
    video.insertAdjacentElement("afterend", bar);

    const at = (event) => {
      const box = bar.getBoundingClientRect();
      const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      return { time: fraction * total, x: event.clientX - box.left, width: box.width };
    };
    bar.addEventListener("mousemove", (event) => {
      const { time, x, width } = at(event);
      const cue = cues.find((c) => time >= c.start && time < c.end) || cues[cues.length - 1];
      preview.hidden = false;
      preview.dataset.time = time.toFixed(2);
      preview.dataset.sprite = cue.url;
      preview.style.width = `${cue.w}px`;
      preview.style.height = `${cue.h}px`;
      preview.style.backgroundImage = `url("${cue.url}")`;
      preview.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      preview.style.left = `${Math.min(Math.max(0, x - cue.w / 2), Math.max(0, width - cue.w))}px`;
      label.textContent = format(time);
    });
    bar.addEventListener("mouseleave", () => { preview.hidden = true; });
    bar.addEventListener("click", (event) => { video.currentTime = at(event).time; });
    return { cues, bar };
  }

  return { attach, parse };
})();
