// An operator's path through the vodflow pages in headless Chromium (Debian's, never a downloaded one):
// log in, open Videos from the Airflow nav, see progress bars and states, open a video, watch it play.
// Usage: node videos.mjs BASE_URL USER PASSWORD VIDEO_ID RUN_ID SCREENSHOT_DIR — prints one JSON line of findings.
import { launch, logIn } from "./chromium.mjs";

const [base, user, password, videoId, runId, shots] = process.argv.slice(2);
const browser = await launch();
const findings = { steps: [] };
const step = (name) => findings.steps.push(name);
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const dialogs = [];
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });

  await logIn(page, base, user, password);
  step("logged in");

  // The nav: "Videos" sits in the Browse menu.
  await page.getByRole("button", { name: /browse/i }).first().click();
  await page.getByRole("menuitem", { name: "Videos" }).click();
  await page.waitForURL(/\/plugin\/videos/, { timeout: 15000 });
  step("opened Videos from the nav");
  const list = page.frameLocator("iframe").first();
  const row = list.locator(`tr[data-video="${videoId}"]`);
  await row.waitFor({ timeout: 30000 });
  findings.list_status = await row.locator(".badge").first().textContent();
  findings.list_bars = await row.locator("[role=progressbar]").count();
  findings.list_bar_values = await row.locator("[role=progressbar]").evaluateAll((bars) => bars.map((b) => Number(b.getAttribute("aria-valuenow"))));
  findings.list_title = await row.locator("a").first().textContent();
  await page.screenshot({ path: `${shots}/videos-list.png`, fullPage: true });
  step("saw the video's progress bars and state");

  await row.locator("a").first().click();
  const detail = list;
  await detail.locator("#renditions tr").first().waitFor({ timeout: 15000 });
  findings.detail_title = await detail.locator("#title").textContent();
  findings.detail_renditions = await detail.locator("#renditions tr").count();
  await detail.locator("#events tr").nth(2).waitFor({ timeout: 15000 });
  findings.history_rows = await detail.locator("#events tr").count();
  // The player: hls.js (bundled) plays the published master playlist.
  const video = detail.locator("#player");
  await video.evaluate((v) => v.play());
  await page.waitForTimeout(500);
  const deadline = Date.now() + 20000;
  let playback = null;
  while (Date.now() < deadline) {
    playback = await video.evaluate((v) => ({ t: v.currentTime, paused: v.paused, w: v.videoWidth, h: v.videoHeight, err: v.error && v.error.code }));
    if (playback.t > 1.0) break;
    await page.waitForTimeout(250);
  }
  findings.playback = playback;
  findings.player_note = await detail.locator("#player-note").textContent();
  await page.screenshot({ path: `${shots}/video-page.png`, fullPage: true });
  step("the player played");

  // The run's own tab: the same page, found by run id.
  await page.goto(`${base}/dags/transcode_video/runs/${encodeURIComponent(runId)}`);
  await page.getByRole("tab", { name: "Video" }).or(page.getByRole("link", { name: "Video", exact: true })).first().click();
  const tab = page.frameLocator("iframe").first();
  await tab.locator("#renditions tr").first().waitFor({ timeout: 15000 });
  findings.run_tab_title = await tab.locator("#title").textContent();
  await page.screenshot({ path: `${shots}/run-tab.png`, fullPage: true });
  step("the run's Video tab");
  findings.dialogs = dialogs;
} catch (error) {
  findings.error = String(error && error.stack || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
