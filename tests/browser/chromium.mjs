// What every browser script shares: Debian's Chromium (never a downloaded one), launched headless, and the
// Airflow login form (FAB) an operator goes through first.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
  });
}

export async function logIn(page, base, user, password) {
  await page.goto(base + "/");
  await page.locator("input[name=username]").fill(user);
  await page.locator("input[name=password]").fill(password);
  await page.locator("button[type=submit]").click();
  await page.waitForURL((url) => !url.pathname.includes("login"), { timeout: 30000 });
}

// A script on the vodflow pages as an operator: `node SCRIPT BASE_URL USER PASSWORD VIDEO_ID SCREENSHOT_DIR`.
// Logs in, runs body(page, { base, videoId, shots, findings }), and prints one JSON line of the findings (with
// `error` when something failed: the test reports it).
export async function asOperator(body, findings = {}) {
  const [base, user, password, videoId, shots] = process.argv.slice(2);
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await logIn(page, base, user, password);
    await body(page, { base, videoId, shots, findings });
  } catch (error) {
    findings.error = String(error && error.stack || error);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(findings));
}
