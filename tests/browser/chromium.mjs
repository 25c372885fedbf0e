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
