// A WebM download (AV1 + Opus) in a plain <video> of headless Chromium (Debian's), no player library: can it play
// the type, does it play, how long does it say the file is, does a seek land and play on. Waits on the video's
// own progress (never a fixed sleep), so a loaded machine only makes it slower.
// Usage: node webm.mjs PAGE_URL FILE_URL CODECS — prints one JSON line of findings.
import { launch } from "./chromium.mjs";

const [pageUrl, fileUrl, codecs] = process.argv.slice(2);
const browser = await launch();
const findings = {};
const state = () => {
  const v = document.querySelector("video");
  return { t: v.currentTime, w: v.videoWidth, h: v.videoHeight, duration: v.duration, err: v.error && v.error.code };
};
try {
  const page = await browser.newPage();
  await page.goto(pageUrl);
  findings.can_play = await page.evaluate((c) => document.createElement("video").canPlayType(`video/webm; codecs="${c}"`), codecs);
  findings.started = await page.evaluate(async (url) => {
    const v = document.createElement("video");
    v.muted = true;
    document.body.append(v);
    v.src = url;
    await v.play();
    return v.currentTime;
  }, fileUrl);
  await page.waitForFunction((t) => document.querySelector("video").currentTime > t + 1.0, findings.started, { timeout: 60000 });
  findings.playing = await page.evaluate(state);
  findings.seeked_at = await page.evaluate(async () => {
    const v = document.querySelector("video");
    const seeked = new Promise((done) => v.addEventListener("seeked", done, { once: true }));
    v.currentTime = 3.5;
    await seeked;
    return v.currentTime;
  });
  await page.waitForFunction((t) => document.querySelector("video").currentTime > t + 0.3, findings.seeked_at, { timeout: 60000 });
  findings.after_seek = await page.evaluate(state);
} catch (error) {
  findings.error = String(error && error.stack || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
