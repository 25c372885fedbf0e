// A video's optional outputs in headless Chromium (Debian's): the page lists the downloads with sizes, the MP4
// download plays in a plain <video>, and hovering the storyboard bar shows the tile of that moment.
// Usage: node outputs.mjs BASE_URL USER PASSWORD VIDEO_ID SCREENSHOT_DIR — prints one JSON line of findings.
import { asOperator } from "./chromium.mjs";

await asOperator(async (page, { base, videoId, shots, findings }) => {
  await page.goto(`${base}/vodflow/ui/videos`);
  const row = page.locator(`tr[data-video="${videoId}"]`);
  await row.waitFor({ timeout: 30000 });
  findings.list_poster = await row.locator("img.thumb").evaluate((img) => img.decode().then(() => img.naturalWidth));

  await page.goto(`${base}/vodflow/ui/video?id=${encodeURIComponent(videoId)}`);
  await page.locator("#downloads li").first().waitFor({ timeout: 15000 });
  findings.downloads = await page.locator("#downloads li").allTextContents();
  const mp4 = await page.locator("#downloads a").first().getAttribute("href");

  // Hover the storyboard bar at 25 % and 75 %: the preview shows a tile of its sprite at that time.
  const bar = page.locator(".storyboard");
  await bar.waitFor({ timeout: 15000 });
  const box = await bar.boundingBox();
  findings.previews = [];
  for (const fraction of [0.25, 0.75]) {
    await page.mouse.move(box.x + box.width * fraction, box.y + box.height / 2);
    const preview = page.locator(".storyboard-preview");
    await preview.waitFor({ state: "visible", timeout: 5000 });
    findings.previews.push(await preview.evaluate((p) => ({
      time: Number(p.dataset.time), sprite: p.dataset.sprite, position: p.style.backgroundPosition,
      width: p.clientWidth, label: p.textContent,
    })));
    findings.previews[findings.previews.length - 1].loaded = await page.evaluate(async (url) => {
      const i = new Image(); i.src = url; await i.decode(); return i.naturalWidth;
    }, findings.previews[findings.previews.length - 1].sprite);
  }
  await page.screenshot({ path: `${shots}/video-outputs.png`, fullPage: true });

  // The MP4 download in a plain <video>, no hls.js.
  findings.mp4 = await page.evaluate(async (url) => {
    const v = document.createElement("video");
    v.muted = true;
    document.body.append(v);
    v.src = url;
    await v.play();
    await new Promise((done) => setTimeout(done, 1500));
    return { t: v.currentTime, w: v.videoWidth, h: v.videoHeight, duration: v.duration, err: v.error && v.error.code };
  }, mp4);
});
