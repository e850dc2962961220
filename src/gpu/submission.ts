// One reduction's use of the WebGPU device, shared by the dense and the block-sparse paths of
// engine.ts: the pooled buffers it takes (returned to the pool afterwards, discarded after a failure,
// since a failed submission may leave them in use), the out-of-memory and validation error scopes
// around its work, the optional timestamp queries, and the mapped readback, with a lost device
// reported as GpuDeviceLostError wherever it surfaces.
import type { BufferPool } from './buffer-pool.js';

// WebGPU enums as numbers, so the engine does not depend on the GPUBufferUsage/GPUMapMode globals
// (which Node's `webgpu` package does not install by itself).
export const USAGE_MAP_READ = 0x0001;
export const USAGE_COPY_SRC = 0x0004;
export const USAGE_COPY_DST = 0x0008;
export const USAGE_UNIFORM = 0x0040;
export const USAGE_STORAGE = 0x0080;
const USAGE_QUERY_RESOLVE = 0x0200;
const MAP_READ = 0x0001;

/** The WebGPU device was lost; the runtime retries on WebAssembly. */
export class GpuDeviceLostError extends Error {
  override name = 'GpuDeviceLostError';
}

export class Submission {
  /** Set when timestamps are on: the pass writes its start and end there. */
  readonly querySet: GPUQuerySet | null = null;
  private readonly resolveBuffer: GPUBuffer | null = null;
  private readonly taken: GPUBuffer[] = [];
  private scopes = 2;

  private constructor(
    private readonly device: GPUDevice,
    private readonly pool: BufferPool,
    private readonly what: string,
    private readonly lostReason: () => string | null,
    timestamps: boolean,
  ) {
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    if (timestamps) {
      this.querySet = device.createQuerySet({ type: 'timestamp', count: 2, label: 'lazytensor timing' });
      this.resolveBuffer = this.take(USAGE_QUERY_RESOLVE | USAGE_COPY_SRC, 256, 'timestamps');
    }
  }

  /**
   * Runs `body` with a new submission, then returns every buffer it took to the pool (or discards
   * them after a failure), pops the error scopes it left, and reports a lost device as such.
   */
  static async run<T>(
    device: GPUDevice,
    pool: BufferPool,
    what: string,
    lostReason: () => string | null,
    timestamps: boolean,
    body: (s: Submission) => Promise<T>,
  ): Promise<T> {
    let s: Submission | null = null;
    let failed = false;
    try {
      s = new Submission(device, pool, what, lostReason, timestamps);
      return await body(s);
    } catch (error) {
      failed = true;
      if (s !== null && s.scopes > 0) await s.popScopes().catch(() => undefined);
      const reason = lostReason();
      if (reason !== null && !(error instanceof GpuDeviceLostError)) {
        throw new GpuDeviceLostError(`the WebGPU device was lost: ${reason}`, { cause: error });
      }
      throw error;
    } finally {
      if (s !== null) s.finish(failed);
    }
  }

  /** A pooled buffer of at least `bytes` (16 at least), held until the submission ends. */
  take(usage: number, bytes: number, label: string): GPUBuffer {
    const b = this.pool.acquire(usage, Math.max(16, bytes), label);
    this.taken.push(b);
    return b;
  }

  /** A storage buffer holding `data`. */
  upload(data: ArrayBufferView, label: string): GPUBuffer {
    const b = this.take(USAGE_STORAGE | USAGE_COPY_DST, data.byteLength, label);
    if (typeof SharedArrayBuffer === 'function' && data.buffer instanceof SharedArrayBuffer) {
      // shared memory (a SharedArrayBuffer): copied, Dawn's writeBuffer refuses it
      const copy = new Uint8Array(data.byteLength);
      copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      this.device.queue.writeBuffer(b, 0, copy.buffer, 0, copy.byteLength);
      return b;
    }
    this.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  }

  /** The compute pass's descriptor: with timestamp writes when timing is on. */
  passDescriptor(): GPUComputePassDescriptor {
    const querySet = this.querySet;
    return querySet !== null
      ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } }
      : {};
  }

  /** After the pass: the two timestamps copied to `readback` at byte `at` (when timing is on). */
  copyTimestamps(encoder: GPUCommandEncoder, readback: GPUBuffer, at: number): void {
    if (this.querySet === null) return;
    encoder.resolveQuerySet(this.querySet, 0, 2, this.resolveBuffer!, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer!, 0, readback, at, 16);
  }

  /** The GPU time in ns between the two timestamps copied at byte `at` of a mapped readback. */
  static elapsedNs(mapped: ArrayBuffer, at: number): number {
    const t = new BigUint64Array(mapped, at, 2);
    return t[1]! > t[0]! ? Number(t[1]! - t[0]!) : 0;
  }

  /** Pops the error scopes (once); throws the first error they caught. */
  async popScopes(): Promise<void> {
    const errors: (GPUError | null)[] = [];
    while (this.scopes > 0) {
      this.scopes--;
      errors.push(await this.device.popErrorScope());
    }
    const error = errors.find((e) => e !== null);
    if (error) throw new Error(`${this.what}: WebGPU error: ${error.message}`);
  }

  /** Maps the first `bytes` of `readback` for reading; unmap it when done. */
  async mapRead(readback: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    try {
      await readback.mapAsync(MAP_READ, 0, bytes);
    } catch (cause) {
      const reason = this.lostReason();
      if (reason !== null) throw new GpuDeviceLostError(`the WebGPU device was lost: ${reason}`, { cause });
      throw cause;
    }
    return readback.getMappedRange(0, bytes);
  }

  private finish(failed: boolean): void {
    this.querySet?.destroy();
    for (const b of this.taken) {
      if (failed) this.pool.discard(b);
      else this.pool.release(b);
    }
  }
}
