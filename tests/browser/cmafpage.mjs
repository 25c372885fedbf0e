// The video page of a video published with the cmaf output, in headless Chromium (Debian's), through the plugin
// (its media route, its Content-Security-Policy): the player switches to the DASH manifest and plays it.
// Usage: node cmafpage.mjs BASE_URL USER PASSWORD VIDEO_ID SCREENSHOT_DIR — prints one JSON line of findings.
import { asOperator } from "./chromium.mjs";

await asOperator(async (page, { base, videoId, shots, findings }) => {
  page.on("request", (r) => { if (/\/media\/.*\/cmaf\//.test(r.url())) findings.requests.push(r.url().split("/cmaf/")[1]); });
  page.on("console", (m) => { if (m.type() === "error") findings.console.push(m.text()); });
  await page.goto(`${base}/vodflow/ui/video?id=${encodeURIComponent(videoId)}`);
  await page.waitForFunction(() => /DASH/.test(document.getElementById("player-note").textContent), null, { timeout: 30000 });
  await page.evaluate(() => document.getElementById("player").play().catch(() => {}));
  await page.waitForFunction(() => document.getElementById("player").currentTime > 1.0, null, { timeout: 30000 });
  findings.note = await page.locator("#player-note").textContent();
  findings.playing = await page.evaluate(() => { const v = document.getElementById("player"); return { t: v.currentTime, w: v.videoWidth, err: v.error && v.error.code }; });
  findings.dash = await page.evaluate(() => Boolean(document.getElementById("player").vodflowPlayer && document.getElementById("player").vodflowPlayer.dash));
  await page.screenshot({ path: `${shots}/cmaf-video-page.png`, fullPage: true });
}, { requests: [], console: [] });
