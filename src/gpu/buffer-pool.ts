// GPU buffers are expensive to create and must be destroyed explicitly: the engine takes them from
// this pool and gives them back after each reduction, so repeated calls reuse the same buffers and
// GPU memory does not grow. Sizes are rounded up to size classes (powers of two up to 64 MiB, then
// multiples of 16 MiB) so that calls of slightly different sizes share buffers; free buffers beyond
// `maxCachedBytes` are destroyed, oldest first.

const MiB = 1024 * 1024;

export interface BufferPoolStats {
  /** Buffers created and not yet destroyed (in use or cached). */
  readonly live: number;
  /** Buffers currently handed out. */
  readonly inUse: number;
  /** Bytes held by cached (free) buffers. */
  readonly cachedBytes: number;
  /** Buffers ever created. */
  readonly created: number;
}

export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  /** Free buffers in release order, for eviction. */
  private readonly order: GPUBuffer[] = [];
  private live = 0;
  private inUse = 0;
  private created = 0;
  private cachedBytes = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    private readonly maxCachedBytes = 256 * MiB,
  ) {}

  /** The size a request of `bytes` is served with. */
  sizeClass(bytes: number): number {
    const want = Math.max(256, Math.ceil(bytes / 4) * 4);
    let size: number;
    if (want <= 64 * MiB) size = 2 ** Math.ceil(Math.log2(want));
    else size = Math.ceil(want / (16 * MiB)) * 16 * MiB;
    return size <= this.maxBufferSize ? size : want;
  }

  acquire(usage: number, bytes: number, label: string): GPUBuffer {
    const size = this.sizeClass(bytes);
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    const hit = list?.pop();
    this.inUse++;
    if (hit !== undefined) {
      this.cachedBytes -= size;
      this.order.splice(this.order.indexOf(hit), 1);
      return hit;
    }
    if (size > this.maxBufferSize) {
      this.inUse--;
      throw new RangeError(`${label}: a buffer of ${(size / MiB).toFixed(1)} MiB exceeds this adapter's maxBufferSize`);
    }
    const buffer = this.device.createBuffer({ size, usage, label: `lazytensor ${label}` });
    this.live++;
    this.created++;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    this.inUse--;
    const key = `${buffer.usage}:${buffer.size}`;
    let list = this.free.get(key);
    if (list === undefined) this.free.set(key, (list = []));
    list.push(buffer);
    this.order.push(buffer);
    this.cachedBytes += buffer.size;
    while (this.cachedBytes > this.maxCachedBytes && this.order.length > 0) {
      const old = this.order.shift()!;
      const oldList = this.free.get(`${old.usage}:${old.size}`)!;
      oldList.splice(oldList.indexOf(old), 1);
      this.cachedBytes -= old.size;
      old.destroy();
      this.live--;
    }
  }

  /** Destroys a handed-out buffer instead of caching it (after an error its state is unknown). */
  discard(buffer: GPUBuffer): void {
    this.inUse--;
    this.live--;
    buffer.destroy();
  }

  /** Destroys every cached buffer. */
  clear(): void {
    for (const b of this.order) {
      b.destroy();
      this.live--;
    }
    this.order.length = 0;
    this.free.clear();
    this.cachedBytes = 0;
  }

  stats(): BufferPoolStats {
    return { live: this.live, inUse: this.inUse, cachedBytes: this.cachedBytes, created: this.created };
  }
}
