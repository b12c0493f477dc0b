/**
 * Weights beyond one wasm32 memory. A DeviceSet owns several devices (each one heap of at
 * most 4 GiB with its own kernel instance and threads) and places each weight tensor in
 * the first device with room. A kernel runs on the device that holds its weights; its
 * activations are copied in first (`toDevice`): activations are small next to weights,
 * so the copy costs little compared with the matrix product it feeds.
 */
import { OutOfMemoryError } from '../core/errors.js';
import { fmtBytes } from '../core/heap.js';
import { type Tensor, allocTensor } from '../core/tensor.js';
import { type Device, type DeviceOptions, createDevice } from './device.js';

export class DeviceSet {
  private constructor(
    readonly devices: Device[],
    private readonly options: DeviceOptions,
    private readonly maxDevices: number,
  ) {}

  /** Start with one device; more are created on demand, up to `maxDevices`. */
  static async create(options: DeviceOptions = {}, maxDevices = 8): Promise<DeviceSet> {
    return new DeviceSet([await createDevice(options)], options, maxDevices);
  }

  /** The device whose heap holds tensor `t`. */
  deviceOf(t: Tensor): Device {
    const d = this.devices.find((dev) => dev.heap === t.heap);
    if (!d) throw new Error(`${t} is not in this device set`);
    return d;
  }

  /** Allocate a weight tensor in the first device (arena `arena`) with room, adding a device if none has. */
  async allocWeight(type: number, shape: readonly number[], purpose: string, arena = 'weights'): Promise<Tensor> {
    for (const d of this.devices) {
      try {
        return allocTensor(d.heap.arena(arena), type, shape, purpose);
      } catch (e) {
        if (!(e instanceof OutOfMemoryError)) throw e;
      }
    }
    if (this.devices.length >= this.maxDevices) {
      const total = this.devices.reduce((s, d) => s + d.heap.maxBytes, 0);
      throw new OutOfMemoryError(
        `no room for ${purpose} in ${this.devices.length} heaps of ${fmtBytes(total)} in all (limit ${this.maxDevices} heaps)`,
        { bytes: 0, purpose, arena },
        { freeBytes: 0, largestFreeBlock: 0, capacityBytes: total },
      );
    }
    const d = await createDevice(this.options);
    this.devices.push(d);
    return allocTensor(d.heap.arena(arena), type, shape, purpose);
  }

  /**
   * Allocate several weight tensors in one device (the first with room for all of them, adding
   * a device if none has): a layer's expert stacks and their biases must share a heap because
   * one kernel call reads them all.
   */
  async allocWeights(
    items: readonly { type: number; shape: readonly number[]; purpose: string }[],
    arena = 'weights',
  ): Promise<Tensor[]> {
    const tryDevice = (d: Device): Tensor[] | undefined => {
      const a = d.heap.arena(arena);
      const done: Tensor[] = [];
      try {
        for (const it of items) done.push(allocTensor(a, it.type, it.shape, it.purpose));
        return done;
      } catch (e) {
        if (!(e instanceof OutOfMemoryError)) throw e;
        for (const t of done) if (t.allocation) a.free(t.allocation);
        return undefined;
      }
    };
    for (const d of this.devices) {
      const got = tryDevice(d);
      if (got) return got;
    }
    if (this.devices.length >= this.maxDevices) {
      throw new OutOfMemoryError(
        `no room for ${items.map((i) => i.purpose).join(', ')} in ${this.devices.length} heaps (limit ${this.maxDevices} heaps)`,
        { bytes: 0, purpose: items[0]?.purpose ?? 'weights', arena },
        { freeBytes: 0, largestFreeBlock: 0, capacityBytes: 0 },
      );
    }
    const d = await createDevice(this.options);
    this.devices.push(d);
    const got = tryDevice(d);
    if (!got) throw new OutOfMemoryError(`${items.map((i) => i.purpose).join(', ')} do not fit in one empty heap`, { bytes: 0, purpose: 'weights', arena }, { freeBytes: 0, largestFreeBlock: 0, capacityBytes: d.heap.maxBytes });
    return got;
  }

  /** Adds an empty device (a new heap with its own kernels), within `maxDevices`. */
  async addDevice(): Promise<Device> {
    if (this.devices.length >= this.maxDevices) {
      throw new OutOfMemoryError(
        `cannot add a heap: ${this.devices.length} heaps are the limit`,
        { bytes: 0, purpose: 'heap', arena: '' },
        { freeBytes: 0, largestFreeBlock: 0, capacityBytes: this.devices.reduce((s, d) => s + d.heap.maxBytes, 0) },
      );
    }
    const d = await createDevice(this.options);
    this.devices.push(d);
    return d;
  }

  /**
   * `t` on `device`: itself when it is already there, else a copy in the device's
   * "activations" arena (the caller frees it with `arena.free(copy.allocation)` or a reset).
   */
  toDevice(t: Tensor, device: Device): Tensor {
    if (t.heap === device.heap) return t;
    const copy = allocTensor(device.heap.arena('activations'), t.type, t.shape, `copy of ${t}`);
    copy.bytes.set(t.bytes);
    return copy;
  }

  dispose(): void {
    for (const d of this.devices) d.dispose();
  }
}
