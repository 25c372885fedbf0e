// The bundled player (static/player.js) on a CMAF tree in headless Chromium (Debian's): hls.js plays the fMP4
// multivariant playlist and is switched to every level; dash.js plays the MPD (same segment files) and is switched
// to every video representation. Usage: node cmaf.mjs PAGE_URL hls|dash — prints one JSON line of findings.
import { launch } from "./chromium.mjs";

const [pageUrl, mode] = process.argv.slice(2);
const browser = await launch();
const findings = { mode, reached: [], errors: [] };
const until = (page, fn, arg, timeout = 30000) => page.waitForFunction(fn, arg, { timeout });
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => findings.errors.push(String(e)));
  await page.goto(pageUrl);
  await until(page, () => window.ready === true);
  await page.evaluate(() => document.getElementById("player").play());
  await until(page, () => document.getElementById("player").currentTime > 0.5);
  findings.levels = await page.evaluate(() => window.levels());
  for (let i = 0; i < findings.levels.length; i++) {
    const height = findings.levels[i].height;
    await page.evaluate((index) => window.pick(index), i);
    // The switch is rendered: that level's segments are fetched and the picture has its size.
    await until(page, ([index, h]) => window.rendered.includes(index) && window.loaded.some((u) => u.includes(`/${window.levels()[index].id}/seg_`))
                && document.getElementById("player").videoHeight === h, [i, height]);
    const t = await page.evaluate(() => document.getElementById("player").currentTime);
    findings.reached.push({ index: i, height, at: t });
  }
  const before = await page.evaluate(() => document.getElementById("player").currentTime);
  await until(page, (t) => document.getElementById("player").currentTime > t + 0.5, before);
  findings.audio_fragments = await page.evaluate(() => window.loaded.filter((u) => u.includes("/aac-")).length);
  findings.video_fragments = await page.evaluate(() => window.loaded.filter((u) => u.includes(".m4s") && !u.includes("/aac-")).length);
  findings.playing = await page.evaluate(() => { const v = document.getElementById("player"); return { t: v.currentTime, err: v.error && v.error.code, paused: v.paused }; });
} catch (error) {
  findings.error = String(error && error.stack || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
