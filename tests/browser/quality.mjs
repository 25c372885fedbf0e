// A per-title video's page in headless Chromium (Debian's): the renditions table's VMAF column, as an operator
// reads it (its header's explanation, and each rendition's "mean (5th percentile)").
// Usage: node quality.mjs BASE_URL USER PASSWORD VIDEO_ID SCREENSHOT_DIR — prints one JSON line of findings.
import { asOperator } from "./chromium.mjs";

await asOperator(async (page, { base, videoId, shots, findings }) => {
  await page.goto(`${base}/vodflow/ui/video?id=${encodeURIComponent(videoId)}`);
  await page.locator("#renditions tr").first().waitFor({ timeout: 15000 });
  const headerCells = page.locator("#renditions").locator("xpath=..").locator("thead th");
  const headers = await headerCells.allTextContents();
  const column = headers.indexOf("VMAF");
  findings.header = column < 0 ? null : { text: headers[column], title: await headerCells.nth(column).getAttribute("title") };
  findings.renditions = await page.locator("#renditions tr").evaluateAll((rows, at) => rows.map((tr) => ({
    name: tr.dataset.rendition, vmaf: at < 0 ? null : tr.children[at].textContent,
  })), column);
  await page.screenshot({ path: `${shots}/video-quality.png`, fullPage: true });
});
