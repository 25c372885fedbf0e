// One multi-codec CMAF tree (H.264 + AV1 + HEVC, one master, one MPD) in headless Chromium (Debian's), through
// hls.js and dash.js (the bundled player, static/player.js) and Shaka Player: each plays the tree, and is switched
// to each AV1 level; with `h264only`, the page refuses av01/hvc1 (MediaSource.isTypeSupported and
// navigator.mediaCapabilities.decodingInfo) before the player loads, as a device that decodes only H.264 would,
// and the player must play the same master fetching only H.264 segments; with `hdr`, an SDR screen's player
// must leave the PQ variant alone.
// Usage: node multicodec.mjs BASE_URL MODE[,MODE...] — MODE: hls | dash | shaka, with "-h264only" for that
// configuration, "-hdr" for the HDR source's master/MPD (H.264 SDR beside AV1 PQ), "-av1master" for the AV1
// ladder's own master (master-av1.m3u8). Prints one JSON line:
// {MODE: findings}.
import { launch } from "./chromium.mjs";

const [base, modes] = process.argv.slice(2);
const browser = await launch();
const results = {};
const until = (page, fn, arg, timeout = 20000) => page.waitForFunction(fn, arg, { timeout });
const video = () => document.getElementById("player");

async function run(mode) {
  const [player, option] = mode.split("-");
  const findings = { mode, reached: [], errors: [] };
  const page = await browser.newPage();
  page.on("pageerror", (e) => findings.errors.push(String(e)));
  try {
    await page.goto(`${base}/multicodec.html?player=${player}${option ? "&" + option + "=1" : ""}`);
    await until(page, () => window.ready === true || window.failed);
    findings.support = await page.evaluate(() => ({ ...window.support, screenHdr: window.screenHdr }));
    await page.evaluate(() => document.getElementById("player").play());
    await until(page, () => document.getElementById("player").currentTime > 0.5);
    findings.levels = await page.evaluate(() => window.levels());
    findings.started = await page.evaluate(() => window.current());
    if (!option || option === "av1master") {  // the AV1 ladder
      const av1 = findings.levels.map((l, i) => [l, i]).filter(([l]) => l.codec.startsWith("av01"));
      // Both ways: the top AV1 level, then the lowest (the player starts on one of them or on another codec).
      for (const [level, index] of [...av1].sort((a, b) => b[0].height - a[0].height)) {
        await page.evaluate((i) => window.pick(i), index);
        await until(page, ([i, id, h]) => window.rendered.includes(i) && window.loaded.some((u) => u.includes(`/${id}/seg_`))
                    && document.getElementById("player").videoHeight === h, [index, level.id, level.height]);
        findings.reached.push({ id: level.id, height: level.height, at: await page.evaluate(() => document.getElementById("player").currentTime) });
      }
    }
    const before = await page.evaluate(() => document.getElementById("player").currentTime);
    await until(page, (t) => document.getElementById("player").currentTime > t + 0.5, before);
    findings.loaded = await page.evaluate(() => window.loaded.map((u) => new URL(u).pathname.split("/cmaf/")[1]));
    findings.playing = await page.evaluate(() => { const v = document.getElementById("player"); return { t: v.currentTime, h: v.videoHeight, err: v.error && v.error.code }; });
    findings.failed = await page.evaluate(() => window.failed || null);
  } catch (error) {
    findings.error = String(error && error.stack || error);
    findings.failed = await page.evaluate(() => window.failed || null).catch(() => null);
    findings.state = await page.evaluate(() => ({ rendered: window.rendered, loaded: window.loaded.map((u) => new URL(u).pathname.split("/cmaf/")[1]),
      current: window.current(), t: document.getElementById("player").currentTime, h: document.getElementById("player").videoHeight })).catch(() => null);
  } finally {
    await page.close();
  }
  return findings;
}

try {  // three pages at a time: most of a run is waiting for playback to advance in real time
  const queue = modes.split(",");
  const worker = async () => { while (queue.length) { const mode = queue.shift(); results[mode] = await run(mode); } };
  await Promise.all([worker(), worker(), worker()]);
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
