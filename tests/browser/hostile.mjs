// A video whose title, file name and track titles are hostile (markup, quotes), on its page and in the list, in
// headless Chromium (Debian's): no script runs, no element is injected (an <img src=x> would be fetched even where
// the Content-Security-Policy stops its onerror), and the text shows as it is.
// Usage: node hostile.mjs BASE_URL USER PASSWORD VIDEO_ID SCREENSHOT_DIR — prints one JSON line of findings.
import { asOperator } from "./chromium.mjs";

await asOperator(async (page, { base, videoId, shots, findings }) => {
  page.on("dialog", (d) => { findings.dialogs.push(d.message()); d.dismiss(); });
  page.on("request", (r) => { if (/\/x$/.test(new URL(r.url()).pathname)) findings.injected_requests.push(r.url()); });
  page.on("console", (m) => { if (/Content Security Policy/.test(m.text())) findings.csp.push(m.text()); });
  const injected = () => page.evaluate(() => ({
    pwned: window.__pwned || 0,
    elements: document.querySelectorAll("[onerror], [onload], img[src='x'], script:not([src]), iframe").length,
  }));

  await page.goto(`${base}/vodflow/ui/video?id=${encodeURIComponent(videoId)}`);
  await page.waitForFunction(() => document.querySelectorAll("#events tr").length >= 3, null, { timeout: 30000 });
  await page.waitForFunction(() => /audio_tracks/.test(document.getElementById("events").textContent), null, { timeout: 15000 });
  await page.evaluate(() => document.getElementById("player").play().catch(() => {}));
  await page.waitForTimeout(3000); // the player loads the master and its track names
  findings.title = await page.locator("#title").textContent();
  findings.document_title = await page.title();
  findings.history = await page.locator("#events").innerText();
  findings.audio_options = await page.locator("#audio-track option").allTextContents();
  findings.source = await page.locator("#source code").textContent({ timeout: 5000 });
  findings.video_page = await injected();
  await page.screenshot({ path: `${shots}/hostile-video-page.png`, fullPage: true });

  await page.goto(`${base}/vodflow/ui/videos`);
  await page.locator("#search").fill(videoId);
  const row = page.locator(`tr[data-video="${videoId}"]`);
  await row.waitFor({ timeout: 15000 });
  findings.list_title = await row.locator("a").first().textContent();
  findings.list_page = await injected();
}, { dialogs: [], injected_requests: [], csp: [] });
