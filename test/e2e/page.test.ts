/**
 * The page `switchyard serve` shows at GET /, driven in headless Chromium (Debian's `chromium`
 * through playwright-core's executablePath; the browser is never downloaded): it loads the
 * model's layers x experts grid, streams an answer token by token, lights up the experts of
 * each token (the heatmap changes while tokens arrive), shows routing weights on hover, and a
 * screenshot is saved. Skips with a message when no Chromium is installed (fails under CI=true).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDefaultModel } from '../../src/api/default-model.js';
import { type LoadedModel, loadModel } from '../../src/api/model.js';
import { createServer, type SwitchyardServer } from '../../src/server/server.js';

const CHROMIUM = process.env.CHROMIUM ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));
if (!CHROMIUM) {
  if (process.env.CI === 'true') throw new Error('test/e2e/page.test.ts: no Chromium (install Debian chromium; .ci/run does)');
  console.warn('skipping the page test: no Chromium found (apt-get install chromium, or set CHROMIUM=/path)');
}

describe.skipIf(!CHROMIUM)('the live page in headless Chromium', () => {
  let model: LoadedModel;
  let server: SwitchyardServer;
  let url: string;
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-page-'));
  beforeAll(async () => {
    model = await loadModel(findDefaultModel() as string, { threads: 2, contextLength: 512, expertMemory: '50%' });
    server = createServer(model);
    const at = await server.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${at.port}/`;
  });
  afterAll(async () => {
    await server?.close();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams an answer and lights up the experts each token uses', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM as string, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
      const external: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(url)) external.push(r.url());
      });
      // The page samples (OpenAI's default temperature 1): make its request greedy so the test
      // cannot draw an early end of generation.
      await page.route('**/v1/chat/completions', (route) => {
        const body = JSON.parse(route.request().postData() ?? '{}') as Record<string, unknown>;
        return route.continue({ postData: JSON.stringify({ ...body, temperature: 0 }) });
      });
      await page.goto(url);
      await page.waitForFunction(() => document.querySelectorAll('#grid .cell').length === 4 * 16);
      await expect(page.textContent('#model')).resolves.toMatch(/4 MoE layers × 16 experts, 2 per token/);
      const lit = () =>
        page.$$eval('#grid .cell', (cs) => cs.map((c) => (c as HTMLElement).style.backgroundColor).join('|'));
      const before = await lit();
      await page.fill('#input', 'The state of the Union');
      await page.press('#input', 'Enter');
      await page.waitForFunction(() => document.querySelectorAll('.assistant .tok').length >= 3);
      const during = await lit();
      await page.waitForFunction(() => !(document.getElementById('send') as HTMLButtonElement).disabled, undefined, { timeout: 60_000 });
      const after = await lit();
      expect(during).not.toBe(before);
      expect(after).not.toBe(before);
      // Every layer lights exactly K = 2 experts for the current token.
      const perLayer = await page.$$eval('#grid .cell', (cs) => {
        const on = cs.map((c) => (/^rgba?\(37, 99, 235/.test((c as HTMLElement).style.backgroundColor) ? 1 : 0));
        return [0, 1, 2, 3].map((l) => on.slice(l * 16, (l + 1) * 16).reduce((a: number, b: number) => a + b, 0));
      });
      expect(perLayer).toEqual([2, 2, 2, 2]);
      const tokens = await page.$$eval('.assistant .tok', (ts) => ts.length);
      expect(tokens).toBeGreaterThanOrEqual(3);
      await page.locator('.assistant .tok').filter({ hasText: /\w/ }).first().hover();
      await expect(page.textContent('#detail')).resolves.toMatch(/block 0: #\d+ \d+\.\d%/);
      await expect(page.textContent('#hit')).resolves.toMatch(/\d+\.\d%/);
      await page.screenshot({ path: path.join(dir, 'page.png') });
      expect(existsSync(path.join(dir, 'page.png'))).toBe(true);
      expect(external).toEqual([]); // no CDN, nothing outside the server
    } finally {
      await browser.close();
    }
  }, 120_000);
});
