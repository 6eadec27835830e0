// A real browser for the tests of the daemon's status page: the system's Chromium, driven by
// puppeteer-core (which never downloads one). `bash scripts/ensure-chromium.sh` installs it;
// TOPOGIT_CHROMIUM names another binary.
import { accessSync, constants } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

const NO_CHROMIUM = 'no chromium: run bash scripts/ensure-chromium.sh (or apt-get install -y chromium)';

/** Screenshots go here (test-results/ is gitignored). */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../test-results/browser/', import.meta.url));

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Chromium binary: TOPOGIT_CHROMIUM, else `chromium` or `chromium-browser` on PATH. Throws when there is none. */
export function chromiumPath(): string {
  const fromEnv = process.env.TOPOGIT_CHROMIUM;
  if (fromEnv) {
    if (executable(fromEnv)) return fromEnv;
    throw new Error(`TOPOGIT_CHROMIUM=${fromEnv} is not an executable file; ${NO_CHROMIUM}`);
  }
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const name of ['chromium', 'chromium-browser']) {
    for (const dir of dirs) {
      const file = path.join(dir, name);
      if (executable(file)) return file;
    }
  }
  throw new Error(NO_CHROMIUM);
}

/** A headless Chromium. --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start. Close it in a finally/afterAll. */
export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/** Writes test-results/browser/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await mkdir(path.dirname(file), { recursive: true });
  await page.screenshot({ path: file as `${string}.png`, fullPage: true });
  return file;
}
