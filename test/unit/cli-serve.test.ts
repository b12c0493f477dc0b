/**
 * `switchyard serve` on the embedded model: binds 127.0.0.1 by default, answers /health, the
 * page at / and an OpenAI chat request, requires the API key when one is given, and stops on
 * SIGINT; bad flags are one line and exit status 2.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ARGS = ['--import', 'tsx', 'src/cli/run.ts', '--threads', '2', 'serve', '--port', '0'];

/** Starts the server, waits for its "serving ... at http://..." line, returns the URL and a stop function. */
async function start(extra: string[] = []): Promise<{ url: string; banner: string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [...ARGS, ...extra], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no serving line: ${err}`)), 60_000);
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving .* at (http:\/\/[^\s]+) /.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  return {
    url,
    banner: err,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', (code) => resolve(code));
        child.kill('SIGINT');
      }),
  };
}

describe('switchyard serve', () => {
  it('serves the API and the page on 127.0.0.1 and stops on SIGINT', async () => {
    const s = await start();
    try {
      expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await (await fetch(`${s.url}/health`)).json()).toEqual({ status: 'ok' });
      const page = await fetch(`${s.url}/`);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
      expect(await page.text()).toMatch(/Experts firing/);
      const r = await fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, temperature: 0 }),
      });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBeGreaterThan(0);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  }, 90_000);

  it('requires the API key on /v1 when one is given', async () => {
    const s = await start(['--api-key', 'sekret', '--parallel', '2']);
    try {
      expect(s.banner).toMatch(/2 at once, API key required/);
      expect((await fetch(`${s.url}/v1/models`)).status).toBe(401);
      expect((await fetch(`${s.url}/v1/models`, { headers: { authorization: 'Bearer sekret' } })).status).toBe(200);
    } finally {
      await s.stop();
    }
  }, 90_000);

  it('chat: /stats prints the last reply\'s figures and the memory in use', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', '--threads', '2', 'chat', '-n', '4', '--temp', '0', '--expert-memory', '50%'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      input: '/stats\nHello\n/stats\n/exit\n',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\(no reply yet\)/);
    expect(r.stderr).toMatch(/generation: 4 tokens/);
    expect(r.stderr).toMatch(/expert cache: 32 slots/);
    expect(r.stderr).toMatch(/memory: .* resident weights, .* expert cache, .* KV cache/);
  });

  it.each([
    [['--port', '70000'], /--port must be a whole number from 0 to 65535/],
    [['--api-key', ' '], /--api-key must not be empty/],
    [['--expert-memory', '1KiB'], /below the minimum/],
    [['--parallel', '0'], /--parallel must be a whole number from 1 to 256/],
  ])('%j: one line, exit status 2', (flags, why) => {
    const r = spawnSync(process.execPath, [...ARGS.slice(0, -2), ...flags], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(why);
  });
});
