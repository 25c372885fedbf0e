// The bundled player (static/player.js + hls.js) on a published tree with an alternate audio track, in headless
// Chromium (Debian's): it lists both tracks, plays, switches to the other one and keeps playing from it.
// Usage: node audio.mjs PAGE_URL — prints one JSON line of findings.
import { launch } from "./chromium.mjs";

const [pageUrl] = process.argv.slice(2);
const browser = await launch();
const findings = {};
try {
  const page = await browser.newPage();
  await page.goto(pageUrl);
  const select = page.locator("#audio-track");
  await page.waitForFunction(() => document.querySelectorAll("#audio-track option").length >= 2, null, { timeout: 30000 });
  findings.options = await select.locator("option").allTextContents();
  findings.select_hidden = await select.evaluate((s) => s.hidden);
  findings.tracks = await page.evaluate(() => hls.audioTracks.map((t) => ({ name: t.name, lang: t.lang, default: t.default, url: t.url || null })));
  findings.first = await page.evaluate(() => hls.audioTrack);
  await page.evaluate(() => document.getElementById("player").play());
  await page.waitForFunction(() => document.getElementById("player").currentTime > 1.0, null, { timeout: 30000 });
  await select.selectOption({ index: 1 });
  await page.waitForFunction(() => window.switched !== undefined && window.loaded.some((u) => u.includes("/audio/")), null, { timeout: 30000 });
  const before = await page.evaluate(() => document.getElementById("player").currentTime);
  await page.waitForFunction((t) => document.getElementById("player").currentTime > t + 1.0, before, { timeout: 30000 });
  findings.switched = await page.evaluate(() => window.switched);
  findings.now = await page.evaluate(() => hls.audioTrack);
  findings.audio_fragments = await page.evaluate(() => window.loaded.filter((u) => u.includes("/audio/")).length);
  findings.playing = await page.evaluate(() => { const v = document.getElementById("player"); return { t: v.currentTime, err: v.error && v.error.code }; });
} catch (error) {
  findings.error = String(error && error.stack || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
