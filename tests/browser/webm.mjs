// A WebM download (AV1 + Opus) in a plain <video> of headless Chromium (Debian's), no player library: can it play
// the type, does it play, how long does it say the file is, does a seek land and play on.
// Usage: node webm.mjs PAGE_URL FILE_URL CODECS — prints one JSON line of findings.
import { launch } from "./chromium.mjs";

const [pageUrl, fileUrl, codecs] = process.argv.slice(2);
const browser = await launch();
const findings = {};
try {
  const page = await browser.newPage();
  await page.goto(pageUrl);
  findings.can_play = await page.evaluate((c) => document.createElement("video").canPlayType(`video/webm; codecs="${c}"`), codecs);
  findings.playing = await page.evaluate(async (url) => {
    const v = document.createElement("video");
    v.muted = true;
    document.body.append(v);
    v.src = url;
    await v.play();
    const started = v.currentTime;
    await new Promise((done) => setTimeout(done, 1500));
    return { started, t: v.currentTime, w: v.videoWidth, h: v.videoHeight, duration: v.duration,
             err: v.error && v.error.code };
  }, fileUrl);
  findings.seeked = await page.evaluate(async () => {
    const v = document.querySelector("video");
    v.currentTime = 3.5;
    await new Promise((done) => v.addEventListener("seeked", done, { once: true }));
    const at = v.currentTime;
    await new Promise((done) => setTimeout(done, 700));
    return { at, t: v.currentTime, err: v.error && v.error.code };
  });
} catch (error) {
  findings.error = String(error && error.stack || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
