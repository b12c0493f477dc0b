/**
 * Asynchronous positional reads of expert weight slices straight into shared wasm memory.
 * The forward pass is synchronous and never yields to the event loop, so fs.promises would
 * only report completion too late; instead our own worker threads take reads from a queue in
 * a SharedArrayBuffer and signal completion with Atomics, and the caller blocks with
 * Atomics.wait only when it needs the bytes (same pattern as src/kernels/wasm/pool.ts: one
 * message per worker at start, never a postMessage per read). Reference: issue 6.
 *
 * Shared layout (all written by the calling thread unless noted):
 *   ctl      Int32[4]            HEAD (workers advance it by CAS), TAIL (producer), QUIT
 *   queue    Int32[queueCap]     range slot indices, a ring indexed by counter & mask
 *   ranges   per range slot      file, memory, offset, length (Int32) and position (Float64,
 *                                exact to 2^53: positions pass 2^32 in large files);
 *                                slot = ticket * MAX_RANGES + i, so a slot names its ticket
 *   remaining Int32[maxTickets]  reads left per ticket; the worker that takes it to 0 notifies
 *   failed   Int32[maxTickets]   0, or 1 + the slot of the first failed read (set by CAS)
 *   reasons  bytes per ticket    UTF-8 reason of that failure, length in reasonLen
 *   stats    Float64 per worker  bytes read by that worker (its only writer)
 * The files are opened once here; workers use the same fds (pread is thread-safe), so the
 * calling thread can close them after the workers have stopped.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { InvalidArgumentError, SwitchyardError } from '../core/errors.js';

/** One positional read: `length` bytes of files[file] at byte `position` into memories[memory] at byte `offset`. */
export interface ReadRange {
  readonly file: number;
  readonly position: number;
  readonly length: number;
  readonly memory: number;
  readonly offset: number;
}

/**
 * A read failed (I/O error, or the file ended early: it was truncated or changed after it
 * was opened). Code 'E_EXPERT_READ'. The message names the label, the file path, the
 * position and length, and the reason.
 */
export class ExpertReadError extends SwitchyardError {
  constructor(
    /** The batch's label given to submit(), e.g. "blk.3 expert 17". */
    readonly label: string,
    /** Path of the file being read. */
    readonly file: string,
    /** Byte position of the failed read in the file. */
    readonly position: number,
    /** Bytes the failed read asked for. */
    readonly length: number,
    /** What went wrong (an errno message, or where the file ended). */
    readonly reason: string,
  ) {
    super('E_EXPERT_READ', `${label}: cannot read ${length} bytes at byte ${position} of ${file}: ${reason}`);
  }
}

export interface ExpertReaderOptions {
  /** I/O worker threads (default 2). 0 = synchronous reads on the calling thread inside submit(). */
  readonly threads?: number;
  /** Tickets in flight at most (default 4096). */
  readonly maxTickets?: number;
}

/** Ranges per ticket at most (one expert is 3: gate, up, down). */
export const MAX_RANGES_PER_TICKET = 8;
const REASON_BYTES = 240;
// Node's fs rejects single reads above 2^31 - 1 bytes; larger ranges are read in chunks.
const CHUNK_BYTES = 1 << 30;
// ctl words, numbered the same in WORKER_SOURCE: 0 head (only workers move it), 1 tail, 2 quit.
const TAIL = 1;
const QUIT = 2;
// Range table columns (Int32).
const R_FILE = 0;
const R_MEMORY = 1;
const R_OFFSET = 2;
const R_LENGTH = 3;
const R_COLS = 4;

interface Shared {
  readonly ctl: Int32Array;
  readonly queue: Int32Array;
  readonly rangeInts: Int32Array;
  readonly rangePos: Float64Array;
  readonly remaining: Int32Array;
  readonly failed: Int32Array;
  readonly reasonLen: Int32Array;
  readonly reasons: Uint8Array;
  readonly stats: Float64Array;
}

function makeShared(maxTickets: number, queueCap: number, workers: number): Shared {
  const slots = maxTickets * MAX_RANGES_PER_TICKET;
  const sab = (bytes: number) => new SharedArrayBuffer(Math.max(8, bytes));
  return {
    ctl: new Int32Array(sab(4 * 4)),
    queue: new Int32Array(sab(4 * queueCap)),
    rangeInts: new Int32Array(sab(4 * R_COLS * slots)),
    rangePos: new Float64Array(sab(8 * slots)),
    remaining: new Int32Array(sab(4 * maxTickets)),
    failed: new Int32Array(sab(4 * maxTickets)),
    reasonLen: new Int32Array(sab(4 * maxTickets)),
    reasons: new Uint8Array(sab(REASON_BYTES * maxTickets)),
    stats: new Float64Array(sab(8 * (workers + 1))),
  };
}

// Plain JavaScript so it runs the same from TypeScript sources (tests) and from dist/.
// Keep the read loop in step with readRange() below (the synchronous twin).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { fds, memories, shared, mask, index, maxRanges, reasonBytes, chunkBytes } = workerData;
const { ctl, queue, rangeInts, rangePos, remaining, failed, reasonLen, reasons, stats } = shared;
const encoder = new TextEncoder();
const scratch = new Uint8Array(reasonBytes);

function fail(ticket, slot, reason) {
  if (Atomics.compareExchange(failed, ticket, 0, slot + 1) !== 0) return; // keep the first failure
  const { written } = encoder.encodeInto(reason, scratch);
  reasons.set(scratch.subarray(0, written), ticket * reasonBytes);
  Atomics.store(reasonLen, ticket, written);
}

function run(slot) {
  const ticket = Math.floor(slot / maxRanges);
  const file = rangeInts[slot * 4], memory = rangeInts[slot * 4 + 1];
  const offset = rangeInts[slot * 4 + 2] >>> 0, length = rangeInts[slot * 4 + 3] >>> 0;
  const position = rangePos[slot];
  let done = 0;
  try {
    // Re-made per read: the memory may have grown since the last one.
    const view = new Uint8Array(memories[memory].buffer, offset, length);
    while (done < length) {
      const n = readSync(fds[file], view, done, Math.min(length - done, chunkBytes), position + done);
      if (n === 0) {
        fail(ticket, slot, 'the file ended at byte ' + (position + done) + ' (truncated or changed after it was opened)');
        break;
      }
      done += n;
    }
  } catch (e) {
    fail(ticket, slot, String((e && e.message) || e));
  }
  stats[index] += done;
  if (Atomics.sub(remaining, ticket, 1) === 1) Atomics.notify(remaining, ticket);
}

parentPort.postMessage({ ready: true });
for (;;) {
  if (Atomics.load(ctl, 2) !== 0) break;
  const h = Atomics.load(ctl, 0);
  const t = Atomics.load(ctl, 1);
  if (h === t) {
    Atomics.wait(ctl, 1, t);
    continue;
  }
  const slot = Atomics.load(queue, h & mask);
  if (Atomics.compareExchange(ctl, 0, h, (h + 1) | 0) === h) run(slot);
}
`;

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

function checkCount(value: number, what: string, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`expert reader: ${what} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

export class ExpertReader {
  /** I/O worker threads; 0 in synchronous mode. */
  readonly threads: number;
  private readonly freeTickets: number[] = [];
  private readonly inUse: Uint8Array;
  private readonly labels: string[] = [];
  private syncBytes = 0;
  private closed = false;

  private constructor(
    private readonly paths: readonly string[],
    private readonly fds: number[],
    private readonly sizes: readonly number[],
    private readonly memories: readonly WebAssembly.Memory[],
    private readonly shared: Shared,
    private readonly mask: number,
    private readonly workers: Worker[],
    readonly maxTickets: number,
  ) {
    this.threads = workers.length;
    this.inUse = new Uint8Array(maxTickets);
    for (let t = maxTickets - 1; t >= 0; t--) this.freeTickets.push(t);
  }

  /**
   * Opens the files (fs paths; a GGUFFile's `paths`) and starts the workers (resolves when
   * they are ready). Memories that are not shared force synchronous mode.
   */
  static async open(
    files: readonly string[],
    memories: readonly WebAssembly.Memory[],
    options: ExpertReaderOptions = {},
  ): Promise<ExpertReader> {
    const maxTickets = checkCount(options.maxTickets ?? 4096, 'maxTickets', 1);
    let threads = checkCount(options.threads ?? 2, 'threads', 0);
    if (!memories.every(isShared)) threads = 0; // workers cannot write into a non-shared memory
    const fds: number[] = [];
    const sizes: number[] = [];
    const closeAll = () => {
      for (const fd of fds) closeSync(fd);
    };
    for (const path of files) {
      try {
        const fd = openSync(path, 'r');
        fds.push(fd);
        sizes.push(fstatSync(fd).size);
      } catch (e) {
        closeAll();
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? 'no such file' : String((e as Error).message ?? e);
        throw new SwitchyardError('E_EXPERT_READ', `expert reader: cannot open ${path}: ${why}`);
      }
    }
    // The queue holds at most every range of every ticket in flight; a power of two so the
    // wrapping Int32 counters index it with a mask.
    let queueCap = 1;
    while (queueCap < maxTickets * MAX_RANGES_PER_TICKET) queueCap *= 2;
    const shared = makeShared(maxTickets, queueCap, threads);
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 0; index < threads; index++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        // The source is CommonJS: under `node --input-type=module` an eval worker would be ESM.
        execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')),
        workerData: {
          fds,
          memories,
          shared,
          mask: queueCap - 1,
          index,
          maxRanges: MAX_RANGES_PER_TICKET,
          reasonBytes: REASON_BYTES,
          chunkBytes: CHUNK_BYTES,
        },
      });
      workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.once('message', () => resolve());
          w.once('error', (e) => reject(new SwitchyardError('E_EXPERT_READ', `expert reader: I/O worker ${index} failed to start: ${e}`)));
        }),
      );
    }
    try {
      await Promise.all(ready);
      for (const w of workers) w.unref(); // an open reader never keeps the process alive
    } catch (e) {
      Atomics.store(shared.ctl, QUIT, 1);
      Atomics.notify(shared.ctl, TAIL);
      await Promise.all(workers.map((w) => w.terminate()));
      closeAll();
      throw e;
    }
    return new ExpertReader(files, fds, sizes, memories, shared, queueCap - 1, workers, maxTickets);
  }

  /**
   * Starts the reads of one batch (e.g. one expert's three slices; up to 8 ranges) and
   * returns its ticket. Never blocks: throws SwitchyardError 'E_INTERNAL' if maxTickets are in
   * flight (the caller must wait() on tickets first). Ranges are checked (file and memory
   * index, non-negative integers, offset + length within the memory, position + length
   * within the file as opened). `label` names the batch in errors, e.g. "blk.3 expert 17".
   * In synchronous mode the reads happen here; a failure is still reported by wait().
   */
  submit(ranges: readonly ReadRange[], label: string): number {
    if (this.closed) throw new SwitchyardError('E_CLOSED', `expert reader: submit(${label}) after close()`);
    if (ranges.length > MAX_RANGES_PER_TICKET) {
      throw new InvalidArgumentError(`expert reader: ${label}: ${ranges.length} ranges, at most ${MAX_RANGES_PER_TICKET} per ticket`);
    }
    for (let i = 0; i < ranges.length; i++) this.checkRange(ranges[i], `${label}: range ${i}`);
    const ticket = this.freeTickets.pop();
    if (ticket === undefined) {
      throw new SwitchyardError('E_INTERNAL', `expert reader: ${label}: all ${this.maxTickets} tickets are in flight; wait() on some first`);
    }
    this.inUse[ticket] = 1;
    this.labels[ticket] = label;
    const s = this.shared;
    Atomics.store(s.failed, ticket, 0);
    Atomics.store(s.reasonLen, ticket, 0);
    Atomics.store(s.remaining, ticket, ranges.length);
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i];
      const slot = ticket * MAX_RANGES_PER_TICKET + i;
      s.rangeInts[slot * R_COLS + R_FILE] = r.file;
      s.rangeInts[slot * R_COLS + R_MEMORY] = r.memory;
      s.rangeInts[slot * R_COLS + R_OFFSET] = r.offset | 0; // read back with >>> 0 (offsets reach 4 GiB - 1)
      s.rangeInts[slot * R_COLS + R_LENGTH] = r.length | 0;
      s.rangePos[slot] = r.position;
      if (this.threads === 0) {
        this.readRange(ticket, slot);
      } else {
        // The entry is written before the tail moves (Atomics are sequentially consistent).
        const tail = Atomics.load(s.ctl, TAIL);
        Atomics.store(s.queue, tail & this.mask, slot);
        Atomics.store(s.ctl, TAIL, (tail + 1) | 0);
        Atomics.notify(s.ctl, TAIL, 1);
      }
    }
    return ticket;
  }

  /** Whether every read of the ticket has finished (successfully or not). Never blocks. */
  done(ticket: number): boolean {
    this.checkTicket(ticket, 'done');
    return Atomics.load(this.shared.remaining, ticket) === 0;
  }

  /**
   * Blocks the calling thread (Atomics.wait) until the ticket's reads are done, frees the
   * ticket, and throws ExpertReadError if one of them failed. Returns the seconds spent
   * waiting (0 when it was already done).
   */
  wait(ticket: number): number {
    this.checkTicket(ticket, 'wait');
    // The workers are gone: waiting on a ticket they abandoned would block forever.
    if (this.closed) throw new SwitchyardError('E_CLOSED', `expert reader: wait(${this.labels[ticket]}) after close()`);
    const s = this.shared;
    let seconds = 0;
    let left = Atomics.load(s.remaining, ticket);
    if (left !== 0) {
      const start = performance.now();
      while (left !== 0) {
        Atomics.wait(s.remaining, ticket, left);
        left = Atomics.load(s.remaining, ticket);
      }
      seconds = (performance.now() - start) / 1000;
    }
    const failed = Atomics.load(s.failed, ticket);
    const label = this.labels[ticket];
    this.inUse[ticket] = 0;
    this.labels[ticket] = '';
    this.freeTickets.push(ticket);
    if (failed !== 0) {
      const slot = failed - 1;
      const len = Atomics.load(s.reasonLen, ticket);
      // slice() copies out of the SharedArrayBuffer, which TextDecoder does not accept.
      const bytes = s.reasons.slice(ticket * REASON_BYTES, ticket * REASON_BYTES + len);
      throw new ExpertReadError(
        label,
        this.paths[s.rangeInts[slot * R_COLS + R_FILE]],
        s.rangePos[slot],
        s.rangeInts[slot * R_COLS + R_LENGTH] >>> 0,
        new TextDecoder().decode(bytes),
      );
    }
    return seconds;
  }

  /** Bytes read successfully so far (by every worker, or by submit() in synchronous mode). */
  get bytesRead(): number {
    let sum = this.syncBytes;
    for (let i = 0; i < this.threads; i++) sum += this.shared.stats[i];
    return sum;
  }

  /** Stops the workers and closes the files. Idempotent. Tickets still in flight are abandoned. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.shared.ctl, QUIT, 1);
    Atomics.notify(this.shared.ctl, TAIL);
    // terminate() resolves once a worker has stopped, so no read still uses the fds.
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    for (const fd of this.fds) closeSync(fd);
    this.fds.length = 0;
  }

  /** The synchronous twin of the worker's run() (WORKER_SOURCE). */
  private readRange(ticket: number, slot: number): void {
    const s = this.shared;
    const file = s.rangeInts[slot * R_COLS + R_FILE];
    const memory = s.rangeInts[slot * R_COLS + R_MEMORY];
    const offset = s.rangeInts[slot * R_COLS + R_OFFSET] >>> 0;
    const length = s.rangeInts[slot * R_COLS + R_LENGTH] >>> 0;
    const position = s.rangePos[slot];
    let done = 0;
    let reason = '';
    try {
      const view = new Uint8Array(this.memories[memory].buffer, offset, length);
      while (done < length) {
        const n = readSync(this.fds[file], view, done, Math.min(length - done, CHUNK_BYTES), position + done);
        if (n === 0) {
          reason = `the file ended at byte ${position + done} (truncated or changed after it was opened)`;
          break;
        }
        done += n;
      }
    } catch (e) {
      reason = String((e as Error).message ?? e);
    }
    this.syncBytes += done;
    if (reason !== '' && s.failed[ticket] === 0) {
      s.failed[ticket] = slot + 1;
      const scratch = new Uint8Array(REASON_BYTES);
      const { written } = new TextEncoder().encodeInto(reason, scratch);
      s.reasons.set(scratch.subarray(0, written), ticket * REASON_BYTES);
      s.reasonLen[ticket] = written;
    }
    s.remaining[ticket]--;
  }

  private checkRange(r: ReadRange, where: string): void {
    const bad = (why: string) => new InvalidArgumentError(`expert reader: ${where}: ${why}`);
    for (const key of ['file', 'memory', 'position', 'length', 'offset'] as const) {
      const v = r[key];
      if (!Number.isSafeInteger(v) || v < 0) throw bad(`${key} must be a non-negative integer, got ${v}`);
    }
    if (r.file >= this.paths.length) throw bad(`file index ${r.file}, but there are ${this.paths.length} files`);
    if (r.memory >= this.memories.length) throw bad(`memory index ${r.memory}, but there are ${this.memories.length} memories`);
    const memBytes = this.memories[r.memory].buffer.byteLength;
    if (r.offset + r.length > memBytes) {
      throw bad(`bytes ${r.offset}..${r.offset + r.length} lie beyond memory ${r.memory} (${memBytes} bytes)`);
    }
    if (r.position + r.length > this.sizes[r.file]) {
      throw bad(`bytes ${r.position}..${r.position + r.length} lie beyond ${this.paths[r.file]} (${this.sizes[r.file]} bytes)`);
    }
  }

  private checkTicket(ticket: number, what: string): void {
    if (!Number.isInteger(ticket) || ticket < 0 || ticket >= this.maxTickets || this.inUse[ticket] === 0) {
      throw new InvalidArgumentError(`expert reader: ${what}(${ticket}): not a ticket in flight (already waited on?)`);
    }
  }
}
