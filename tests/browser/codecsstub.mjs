// The video page (static/video.html and its scripts, as served) on a stubbed API, in headless Chromium (Debian's):
// a video in several codecs shows its renditions per codec, the bytes and saving of each codec, the selector of
// each codec's ladder; every string from the API is text, never markup.
// Usage: node codecsstub.mjs STATIC_DIR VIDEO_JSON — prints one JSON line of findings.
import { readFileSync } from "node:fs";
import { launch } from "./chromium.mjs";

const [staticDir, videoFile] = process.argv.slice(2);
const video = JSON.parse(readFileSync(videoFile, "utf8"));
const findings = { console: [], injected: false };
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") findings.console.push(m.text()); });
  page.on("dialog", (d) => { findings.injected = true; d.dismiss(); });
  await page.route("http://vodflow.test/**", async (route) => {
    const url = new URL(route.request().url());
    if (url.pathname === "/vodflow/ui/video") return route.fulfill({ contentType: "text/html", body: readFileSync(`${staticDir}/video.html`) });
    if (url.pathname === "/vodflow/ui/videos") return route.fulfill({ contentType: "text/html", body: readFileSync(`${staticDir}/videos.html`) });
    if (url.pathname === "/vodflow/api/videos") return route.fulfill({ contentType: "application/json", body: JSON.stringify({ videos: [video], total: 1, limit: 25, offset: 0 }) });
    if (url.pathname === "/vodflow/api/stats") return route.fulfill({ contentType: "application/json", body: JSON.stringify({ by_status: { ready: 1, failed: 0 }, active: 0, completed_today: 1, failed_today: 0, average_processing_seconds: null, queue_length: 0, runs_waiting: 0 }) });
    const name = url.pathname.match(/^\/vodflow\/static\/([\w.-]+)$/);
    if (name) return route.fulfill({ contentType: name[1].endsWith(".css") ? "text/css" : "text/javascript", body: readFileSync(`${staticDir}/${name[1]}`) });
    if (url.pathname.endsWith("/events")) return route.fulfill({ contentType: "text/event-stream", body: 'event: end\ndata: {"status": "ready"}\n\n' });
    if (url.pathname === `/vodflow/api/videos/${video.id}`) return route.fulfill({ contentType: "application/json", body: JSON.stringify(video) });
    await new Promise((resolve) => setTimeout(resolve, 1000)); // media: not here (the note is read before)
    return route.fulfill({ status: 404, body: "" });
  });
  await page.goto(`http://vodflow.test/vodflow/ui/video?id=${video.id}`);
  await page.locator("#codec-select option").nth(1).waitFor({ state: "attached", timeout: 15000 });
  findings.groups = await page.locator("#renditions tr.codec-group").evaluateAll((rows) => rows.map((r) => r.textContent));
  findings.rows = await page.locator("#renditions tr[data-rendition]").evaluateAll((rows) => rows.map((r) => ({
    name: r.dataset.rendition, codec: r.dataset.codec, range: r.querySelector("[data-range]").textContent, codecs: r.querySelector("code").textContent })));
  findings.summary = await page.locator("#codec-bytes").textContent();
  findings.options = await page.locator("#codec-select option").evaluateAll((os) => os.map((o) => ({ value: o.value, text: o.textContent, disabled: o.disabled })));
  findings.select_hidden = await page.locator("#codec-select").evaluate((s) => s.hidden);
  findings.images = await page.locator("#renditions img").count();
  findings.requests = [];
  page.on("request", (r) => findings.requests.push(new URL(r.url()).pathname));
  const master = page.waitForRequest((r) => r.url().endsWith("/master-av1.m3u8"), { timeout: 15000 });
  await page.locator("#codec-select").selectOption("av1");
  findings.note = await page.locator("#player-note").textContent(); // before the stub's 404 shows as an error
  await master;
  await page.goto("http://vodflow.test/vodflow/ui/videos");
  await page.locator("#rows .rend").first().waitFor({ timeout: 15000 });
  findings.list = await page.locator("#rows .rend").evaluateAll((lines) => lines.map((l) => ({
    rendition: l.dataset.rendition || null, codec: l.dataset.codec || null, label: l.querySelector("label").textContent })));
} catch (error) {
  findings.error = String(error && error.stack || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
