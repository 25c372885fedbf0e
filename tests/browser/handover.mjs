// The bundled player on an early (EVENT) master, then a switch to the published master at the same position, as
// the video page does at ready: samples the position against the clock around the switch, and the segments
// fetched. Usage: node handover.mjs PAGE_URL — prints one JSON line of findings.
import { launch } from "./chromium.mjs";

const [url] = process.argv.slice(2);
const browser = await launch();
const findings = { segments: [] };
try {
  const page = await browser.newPage();
  page.on("request", (r) => { if (r.url().endsWith(".ts")) findings.segments.push(r.url().split("/tree/")[1]); });
  await page.goto(url);
  await page.waitForFunction(() => window.done, null, { timeout: 60000 });
  Object.assign(findings, await page.evaluate(() => ({ samples: window.samples, switchedAt: window.switchedAt,
                                                       note: document.getElementById("note").textContent })));
} catch (error) {
  findings.error = String(error && error.stack || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
