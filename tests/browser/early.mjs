// Early playback on the video page in headless Chromium: the page is open before the video is playable; it starts
// playing the early (EVENT) playlists while the run is still transcoding, switches to the published master when it
// is ready, and plays to the end. Samples what the player did against the wall clock, and every segment fetched.
// Usage: node early.mjs BASE_URL USER PASSWORD VIDEO_ID SCREENSHOT_DIR — prints one JSON line of findings.
import { launch, logIn } from "./chromium.mjs";

const [base, user, password, videoId, shots] = process.argv.slice(2);
const findings = {};
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(120000); // a loaded machine's api-server can take a while to answer the login page
  await logIn(page, base, user, password);
  const t0 = Date.now();
  findings.segments = []; // [ms since start, path under media/]
  findings.playlists = [];
  page.on("request", (request) => {
    const url = request.url();
    const at = url.indexOf("/media/");
    if (at < 0) return;
    const path = url.slice(at + "/media/".length).split("?")[0];
    (path.endsWith(".ts") ? findings.segments : findings.playlists).push([Date.now() - t0, path]);
  });
  // The video exists once its run registered it: until then the page has nothing to show.
  const api = `${base}/vodflow/api/videos/${encodeURIComponent(videoId)}`;
  while ((await page.request.get(api)).status() === 404) {
    if (Date.now() - t0 > 120000) throw new Error("the video was never registered");
    await page.waitForTimeout(250);
  }
  await page.goto(`${base}/vodflow/ui/video?id=${encodeURIComponent(videoId)}`);
  const player = page.locator("#player");
  const state = () => page.evaluate(() => {
    const v = document.getElementById("player");
    return { t: v.currentTime, paused: v.paused, ended: v.ended, ready: v.readyState, duration: v.duration,
             err: v.error && v.error.code, status: document.querySelector("#summary .badge")?.textContent,
             note: document.getElementById("player-note").textContent, at: Date.now() };
  });
  // Until it plays: the first moment its position moves, and what the page said then.
  let s = await state();
  while (!(s.t > 0)) {
    if (Date.now() - t0 > 150000) throw new Error(`never played: ${JSON.stringify(s)}`);
    await page.waitForTimeout(100);
    s = await state();
  }
  findings.started = { ...s, at: s.at - t0 };
  await page.screenshot({ path: `${shots}/early-playing.png`, fullPage: true });
  // Then every 250 ms until the end (or two minutes of wall clock).
  findings.samples = [];
  while (!s.ended && Date.now() - t0 < 240000) {
    await page.waitForTimeout(250);
    s = await state();
    findings.samples.push([s.at - t0, s.t, s.paused, s.ready, s.status, s.note]);
    if (Number.isFinite(s.duration) && s.duration > 0 && s.t >= s.duration - 0.05 && s.status === "ready") break;
  }
  findings.last = { ...s, at: s.at - t0 };
  findings.history = await page.locator("#events tr td:nth-child(2)").allTextContents();
  await page.screenshot({ path: `${shots}/early-ended.png`, fullPage: true });
  await player.evaluate((v) => v.pause());
} catch (error) {
  findings.error = String(error && error.stack || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
