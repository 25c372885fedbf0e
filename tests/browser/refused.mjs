// The page of a video refused for bad input, in headless Chromium (Debian's): what it says instead of a player,
// and whether it offers a Retry that cannot help.
// Usage: node refused.mjs BASE_URL USER PASSWORD VIDEO_ID SCREENSHOT_DIR — prints one JSON line of findings.
import { asOperator } from "./chromium.mjs";

await asOperator(async (page, { base, videoId, shots, findings }) => {
  await page.goto(`${base}/vodflow/ui/video?id=${encodeURIComponent(videoId)}`);
  await page.waitForFunction(() => document.querySelector("#summary .badge") && document.getElementById("error").textContent,
                             null, { timeout: 30000 });
  await page.waitForTimeout(1500); // the SSE snapshot re-renders once: findings after it
  const text = (id) => page.locator(`#${id}`).textContent();
  findings.summary = await text("summary");
  findings.error_text = await text("error");
  findings.retry_visible = await page.locator("#retry").isVisible();
  findings.retry_note = await text("retry-note");
  findings.player_visible = await page.locator("#player").isVisible();
  findings.player_note = await text("player-note");
  findings.source = await text("source");
  await page.screenshot({ path: `${shots}/refused-video-page.png`, fullPage: true });
});
