// Early playback of a chunked run in hls.js (the bundled one), as an operator's browser sees it: waits for the
// run's video to be playable, starts at 0 on its early master (through the API's media route) while the run is
// still transcoding, and plays to the end. Samples currentTime against wall time every 250 ms and records every
// fragment hls.js loaded, every `waiting` event and the video's status when playback started.
// Usage: node earlychunks.mjs BASE_URL USER PASSWORD RUN_ID SCREENSHOT_DIR [DIRECT_URL] — prints one JSON line of
// findings. With DIRECT_URL (DIRECT_URL/<key> answers a bucket object), the media route's requests go there.
// Patient (2 min a page, 10 min to playable): the machine it runs on may be loaded by other work.
import { launch, logIn } from "./chromium.mjs";

const [base, user, password, runId, shots, direct] = process.argv.slice(2);
const findings = {};
const browser = await launch();
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(120000); // a loaded machine's api-server may take a while to answer the login form
  await logIn(page, base, user, password);
  if (direct) {
    // The media straight from the bucket (the same objects the media route streams): on a loaded machine the
    // api-server's answers took longer than hls.js waits for a fragment, and the player stalled on that.
    await page.route(/\/api\/videos\/[^/]+\/media\//, async (route) => {
      const url = new URL(route.request().url());
      const [, id, rest] = url.pathname.match(/\/api\/videos\/([^/]+)\/media\/(.*)$/);
      const answer = await fetch(`${direct}/videos/${id}/${rest}`);
      await route.fulfill({ status: answer.status, body: Buffer.from(await answer.arrayBuffer()),
        headers: { "content-type": answer.headers.get("content-type") || "application/octet-stream", "cache-control": "no-cache" } });
    });
  }
  await page.goto(`${base}/vodflow/ui/videos`);
  await page.addScriptTag({ url: `${base}/vodflow/static/hls.min.js` });
  const started = await page.evaluate(async (run) => {
    const api = (path) => fetch(`../api/${path}`, { credentials: "same-origin" }).then((r) => r.json());
    const deadline = Date.now() + 600000;
    let video = null;
    while (Date.now() < deadline) {
      const listed = (await api(`videos?run_id=${encodeURIComponent(run)}`)).videos || [];
      video = listed.length ? await api(`videos/${encodeURIComponent(listed[0].id)}`) : null;
      if (video && video.playable_url) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    if (!video || !video.playable_url) throw new Error("never playable: " + JSON.stringify(video));
    const player = document.createElement("video");
    player.id = "early-player";
    player.muted = true;
    document.body.appendChild(player);
    const hls = new Hls({ startPosition: 0 });
    window.earlyHls = hls;
    window.frags = [];
    window.waiting = [];
    window.samples = [];
    window.errors = [];
    hls.on(Hls.Events.FRAG_LOADED, (_e, d) => window.frags.push({ type: d.frag.type, sn: d.frag.sn, level: d.frag.level,
      start: d.frag.start, duration: d.frag.duration, url: d.frag.url.replace(/^.*\/early\//, "") }));
    window.playlists = [];
    const ranges = (b) => [...Array(b.length).keys()].map((i) => [b.start(i), b.end(i)]);
    hls.on(Hls.Events.ERROR, (_e, d) => window.errors.push({ type: d.type, details: d.details, fatal: d.fatal,
      wall: performance.now(), t: player.currentTime }));
    const listed = (kind) => (_e, d) => window.playlists.push({ kind, wall: performance.now(), id: d.level ?? d.id,
      segments: d.details.fragments.length, live: d.details.live });
    hls.on(Hls.Events.LEVEL_LOADED, listed("level"));
    hls.on(Hls.Events.AUDIO_TRACK_LOADED, listed("audio"));
    player.addEventListener("waiting", () => window.waiting.push({ wall: performance.now(), t: player.currentTime,
      buffered: ranges(player.buffered) }));
    player.addEventListener("playing", () => {
      if (window.firstPlaying === undefined) {
        window.firstPlaying = performance.now();
        const tick = () => {
          window.samples.push({ wall: performance.now(), t: player.currentTime, ended: player.ended });
          if (!player.ended) setTimeout(tick, 250);
        };
        tick();
      }
    });
    hls.loadSource(video.playable_url);
    hls.attachMedia(player);
    player.play().catch(() => {});
    return { id: video.id, status: video.status, playable_url: video.playable_url, playable_at: video.playable_at,
             at: new Date().toISOString() };
  }, runId);
  findings.started = started;
  await page.waitForFunction(() => window.firstPlaying !== undefined, null, { timeout: 120000 });
  findings.status_when_playing = await page.evaluate(async (id) => (await fetch(`../api/videos/${encodeURIComponent(id)}`,
    { credentials: "same-origin" }).then((r) => r.json())).status, started.id);
  await page.waitForFunction(() => document.getElementById("early-player").ended, null, { timeout: 300000, polling: 500 });
  findings.samples = await page.evaluate(() => window.samples);
  findings.waiting = await page.evaluate(() => window.waiting.filter((w) => w.wall > window.firstPlaying));
  findings.frags = await page.evaluate(() => window.frags);
  findings.errors = await page.evaluate(() => window.errors);
  findings.end = await page.evaluate(() => { const v = document.getElementById("early-player");
    return { t: v.currentTime, duration: v.duration, ended: v.ended, err: v.error && v.error.code }; });
  findings.levels = await page.evaluate(() => window.earlyHls.levels.map((l) => l.height));
  findings.playlists = await page.evaluate(() => window.playlists);
  findings.first_playing = await page.evaluate(() => window.firstPlaying);
  await page.screenshot({ path: `${shots}/early-chunks.png` });
} catch (error) {
  findings.error = String(error && error.stack || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
