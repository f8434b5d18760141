// Helpers of the browser tests (ui.test.mjs, devices.test.mjs). The Go
// tests of internal/webui give them, in the environment:
//   NETSHARE_URL          the UI's address (http://127.0.0.1:PORT/)
//   NETSHARE_LOGIN_URL    the login link, as 'netshare ui url' prints it
//   NETSHARE_BIN          the netshare binary, for checks through the CLI
//   NETSHARE_SOCKET       the daemon's socket
//   NETSHARE_SCREENSHOTS  where the screenshots go
//   CHROMIUM              the browser (default /usr/bin/chromium)
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const env = process.env;
export const base = env.NETSHARE_URL;
const shots = env.NETSHARE_SCREENSHOTS;
mkdirSync(shots, { recursive: true });

// cli runs the netshare CLI against the same daemon and returns its JSON.
export function cli(...args) {
  const out = execFileSync(env.NETSHARE_BIN, [...args, '--json'], {
    env: { ...process.env, NETSHARE_SOCKET: env.NETSHARE_SOCKET },
  }).toString();
  return out.trim() === '' ? null : JSON.parse(out);
}

// eventually retries check until it passes or 5 s have gone by.
export async function eventually(check, timeout = 5000) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export const mappings = (conn = 'wan0') => cli('mapping', 'list', conn);
export const connection = (name) => cli('connection', 'show', name);

export async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
}

// launch starts Chromium with one page; script errors in any of the
// context's pages are collected in pageErrors.
export async function launch() {
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    // As root, in a closed network: no sandbox, no calls home.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const pageErrors = [];
  context.on('weberror', (e) => pageErrors.push(e.error().message));
  return { browser, context, page, pageErrors };
}
