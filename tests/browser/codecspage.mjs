// The video page of a video in several codecs, in headless Chromium (Debian's), through the plugin: the renditions
// grouped per codec with their range, the bytes per codec and the saving against H.264, and the selector that
// plays one codec's own ladder (its CMAF master) in the page's player.
// Usage: node codecspage.mjs BASE_URL USER PASSWORD VIDEO_ID SCREENSHOT_DIR — prints one JSON line of findings.
import { asOperator } from "./chromium.mjs";

await asOperator(async (page, { base, videoId, shots, findings }) => {
  page.on("request", (r) => { if (/\/media\/.*\/cmaf\//.test(r.url())) findings.requests.push(r.url().split("/cmaf/")[1]); });
  page.on("console", (m) => { if (m.type() === "error") findings.console.push(m.text()); });
  await page.goto(`${base}/vodflow/ui/video?id=${encodeURIComponent(videoId)}`);
  await page.locator("#codec-select option").nth(1).waitFor({ state: "attached", timeout: 30000 });
  findings.groups = await page.locator("#renditions tr.codec-group").evaluateAll((rows) => rows.map((r) => r.textContent));
  findings.rows = await page.locator("#renditions tr[data-rendition]").evaluateAll((rows) => rows.map((r) => ({
    name: r.dataset.rendition, codec: r.dataset.codec, range: r.querySelector("[data-range]").textContent })));
  findings.summary = await page.locator("#codec-bytes").textContent();
  findings.options = await page.locator("#codec-select option").evaluateAll((os) => os.map((o) => ({ value: o.value, text: o.textContent, disabled: o.disabled })));
  findings.hevc_supported = await page.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"'));
  findings.requests.length = 0;
  await page.locator("#codec-select").selectOption("av1");
  await page.waitForFunction(() => /AV1 ladder/.test(document.getElementById("player-note").textContent), null, { timeout: 15000 });
  await page.evaluate(() => document.getElementById("player").play().catch(() => {}));
  await page.waitForFunction(() => document.getElementById("player").currentTime > 1.0, null, { timeout: 30000 });
  findings.note = await page.locator("#player-note").textContent();
  findings.playing = await page.evaluate(() => { const v = document.getElementById("player"); return { t: v.currentTime, w: v.videoWidth, err: v.error && v.error.code }; });
  await page.screenshot({ path: `${shots}/codecs-video-page.png`, fullPage: true });
}, { requests: [], console: [] });
