// hls.js (the bundled one, through the page's player.js) in headless Chromium (Debian's) on a published master with
// automatic captions: the subtitle tracks it lists, the page's selector, then the automatic one chosen there and
// played until a cue of it is showing.
// Usage: node captions.mjs PAGE_URL TRACK_NAME — the page defines window.hls on the master; prints one JSON line.
import { launch } from "./chromium.mjs";

const [pageUrl, trackName] = process.argv.slice(2);
const browser = await launch();
const findings = {};
let page;
try {
  page = await browser.newPage();
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.parsed === true, null, { timeout: 30000 });
  findings.subtitles = await page.evaluate(() => hls.subtitleTracks.map((t) => ({ name: t.name, lang: t.lang, default: t.default, autoselect: t.autoselect })));
  findings.selected_before = await page.evaluate(() => hls.subtitleTrack);
  await page.waitForFunction(() => document.querySelectorAll("#text-track option").length >= 2, null, { timeout: 30000 });
  findings.options = await page.locator("#text-track option").allTextContents();
  // Chosen as a viewer does, in the page's selector.
  await page.selectOption("#text-track", { label: findings.options.find((o) => o.startsWith(trackName)) });
  await page.evaluate(() => document.getElementById("player").play());
  await page.waitForFunction(() => [...document.getElementById("player").textTracks].some(
    (t) => t.mode === "showing" && t.activeCues && t.activeCues.length > 0), null, { timeout: 60000 });
  findings.showing = await page.evaluate(() => {
    const video = document.getElementById("player");
    const track = [...video.textTracks].find((t) => t.mode === "showing" && t.activeCues.length > 0);
    return { label: track.label, language: track.language, at: video.currentTime,
             cues: [...track.activeCues].map((c) => ({ start: c.startTime, end: c.endTime, text: c.text })) };
  });
} catch (error) {
  findings.error = String(error && error.stack || error);
  findings.hls_errors = await page.evaluate(() => window.hlsErrors).catch(() => null);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
