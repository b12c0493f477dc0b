/**
 * The model runs a fixed number of generations at once (its sequences; LoadedModel throws E_BUSY
 * beyond), so requests take turns: up to `maxRunning` run, at most `maxWaiting` wait in FIFO
 * order, and a request beyond that is refused at once (the server answers 429). A waiting request
 * whose signal aborts (its client went away) leaves the queue.
 */

export class QueueFullError extends Error {
  constructor(readonly waiting: number) {
    super(`the server is busy: ${waiting} requests are already waiting for the model; retry later`);
    this.name = 'QueueFullError';
  }
}

interface Waiter {
  start: () => void;
  cancel: (reason: unknown) => void;
}

export class ModelQueue {
  private runs = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly maxWaiting: number,
    readonly maxRunning = 1,
  ) {}

  /** Requests waiting (not counting the one running). */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Requests running now. */
  get running(): number {
    return this.runs;
  }

  /** Whether a request would have to wait. */
  get busy(): boolean {
    return this.runs >= this.maxRunning;
  }

  /**
   * Resolves with a release function once it is this request's turn; rejects with QueueFullError
   * when the queue is full, or with the signal's reason when it aborts while waiting.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!this.busy) {
      this.runs++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiters.length >= this.maxWaiting) return Promise.reject(new QueueFullError(this.waiters.length));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
        cancel: (reason) => {
          signal?.removeEventListener('abort', onAbort);
          reject(reason);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Refuses every waiting request (the server is closing). */
  cancelAll(reason: unknown): void {
    for (const w of this.waiters.splice(0)) w.cancel(reason);
  }

  /** A release that hands the model to the next waiter; calling it twice does nothing. */
  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next.start(); // its run takes this one's place
      else this.runs--;
    };
  }
}
