// hls.js (the bundled one) in headless Chromium (Debian's) on a published master with automatic captions: the
// subtitle tracks it lists, then the automatic one switched on and played until a cue of it is showing.
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
  await page.evaluate((name) => {
    hls.subtitleDisplay = true;
    hls.subtitleTrack = hls.subtitleTracks.findIndex((t) => t.name === name);
    document.getElementById("player").play();
  }, trackName);
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
