/** The server's FIFO queue for the model (src/server/queue.ts): order, bound, leaving, closing. */
import { describe, expect, it } from 'vitest';
import { ModelQueue, QueueFullError } from '../../src/server/queue.js';

describe('ModelQueue', () => {
  it('runs one at a time, in arrival order', async () => {
    const q = new ModelQueue(4);
    const order: number[] = [];
    const first = await q.acquire();
    expect(q.busy).toBe(true);
    const later = [1, 2, 3].map((i) =>
      q.acquire().then((release) => {
        order.push(i);
        return release;
      }),
    );
    expect(q.waiting).toBe(3);
    first();
    first(); // a second release does nothing
    (await later[0])();
    (await later[1])();
    (await later[2])();
    expect(order).toEqual([1, 2, 3]);
    expect(q.busy).toBe(false);
    expect(q.waiting).toBe(0);
  });

  it('runs maxRunning at once; the next starts when one of them ends', async () => {
    const q = new ModelQueue(2, 3);
    const running = await Promise.all([q.acquire(), q.acquire(), q.acquire()]);
    expect(q.running).toBe(3);
    expect(q.busy).toBe(true);
    let started = false;
    const fourth = q.acquire().then((release) => {
      started = true;
      return release;
    });
    expect(q.waiting).toBe(1);
    await Promise.resolve();
    expect(started).toBe(false);
    running[1]?.();
    (await fourth)();
    expect(q.running).toBe(2);
    running[0]?.();
    running[2]?.();
    expect(q.running).toBe(0);
    expect(q.busy).toBe(false);
  });

  it('refuses beyond maxWaiting (0: only the running one)', async () => {
    const q = new ModelQueue(0);
    const release = await q.acquire();
    await expect(q.acquire()).rejects.toBeInstanceOf(QueueFullError);
    release();
    (await q.acquire())();
  });

  it('a waiter whose signal aborts leaves the queue; cancelAll refuses the rest', async () => {
    const q = new ModelQueue(2);
    const release = await q.acquire();
    const leaving = new AbortController();
    const a = q.acquire(leaving.signal);
    const b = q.acquire();
    leaving.abort(new Error('gone'));
    await expect(a).rejects.toThrow('gone');
    expect(q.waiting).toBe(1);
    const c = q.acquire();
    q.cancelAll(new Error('closing'));
    await expect(b).rejects.toThrow('closing');
    await expect(c).rejects.toThrow('closing');
    release();
    expect(q.busy).toBe(false);
    await expect(q.acquire(AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });
});
