// hls.js (the bundled one) in headless Chromium (Debian's) on a published master: the variants, audio tracks and
// subtitle tracks it parsed, whether it played, and every URL the page asked for (a NAME or LANGUAGE that broke
// out of its attribute would show up as another variant, track or host here).
// Usage: node tracks.mjs PAGE_URL — the page defines window.hls on the master; prints one JSON line of findings.
import { launch } from "./chromium.mjs";

const [pageUrl] = process.argv.slice(2);
const browser = await launch();
const findings = { requests: [] };
let page;
try {
  page = await browser.newPage();
  page.on("request", (request) => findings.requests.push(request.url()));
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.parsed === true, null, { timeout: 30000 });
  findings.levels = await page.evaluate(() => hls.levels.map((l) => ({ url: l.url[0], height: l.height })));
  findings.audio = await page.evaluate(() => hls.audioTracks.map((t) => ({ name: t.name, lang: t.lang, url: t.url || null })));
  findings.subtitles = await page.evaluate(() => hls.subtitleTracks.map((t) => ({ name: t.name, lang: t.lang, url: t.url })));
  await page.evaluate(() => document.getElementById("player").play());
  await page.waitForFunction(() => document.getElementById("player").currentTime > 1.0, null, { timeout: 30000 });
  findings.playing = await page.evaluate(() => { const v = document.getElementById("player"); return { t: v.currentTime, err: v.error && v.error.code }; });
} catch (error) {
  findings.error = String(error && error.stack || error);
  findings.hls_errors = await page.evaluate(() => window.hlsErrors).catch(() => null);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
