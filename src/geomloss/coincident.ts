// Coincident points, merged. Every Sinkhorn potential is a function of the location alone (each
// update is f(x_i) = -eps log sum_j b_j exp((g_j - C(x_i, y_j)) / eps), and the initialisation
// depends on the weights only), so points at the same location have the same potentials, and a cloud
// with repeated points is the same measure as its distinct locations carrying the summed weights.
// The loss is computed on those (10^6 copies of one point: one point, instead of 10^12 pairs per
// reduction), and the results are spread back: the potentials (and weight gradients) per location,
// the position gradients, a_i times the same per-unit-weight gradient, in proportion to each point's
// weight. Exact points only (the same bits), found by hashing, in O(N D).
import { checkpoint, type AbortSignalLike } from '../index.js';
import type { Cloud } from './inputs.js';

/** A cloud's distinct locations and where each input point went. */
export interface Merged {
  /** The distinct locations, in the order they first appear, with the input's array type. */
  cloud: Cloud;
  /** Their summed weights. */
  w: Float64Array;
  /** label[i]: the location of input point i. */
  label: Int32Array;
  /** The input weights (to spread the position gradients). */
  inputW: Float64Array;
}

/** Rows hashed between two checkpoints: ~5 ms of work at 10^6 points (the table's random accesses
 *  miss the cache), so that a cloud of any size never holds the event loop (measured before the
 *  slicing: ~250 ms per 10^6-point cloud in one synchronous pass). */
const HASH_SLICE = 1 << 14;

/** The cloud's distinct locations, or null when no two points coincide (or for a batch). Yields to
 *  the event loop while it hashes and rejects with the signal's reason on an abort. */
export async function mergeCoincident(c: Cloud, w: Float64Array, signal?: AbortSignalLike): Promise<Merged | null> {
  const { N, D, data } = c;
  if (c.batched || N < 2) return null;
  const words = data instanceof Float64Array ? 2 * D : D;
  let size = 1;
  while (size < 2 * N) size *= 2;
  const table: HashTable = {
    bits: new Uint32Array(data.buffer, data.byteOffset, N * words),
    words,
    mask: size - 1,
    slots: new Int32Array(size).fill(-1),
    label: new Int32Array(N),
    firstRow: new Int32Array(N),
    distinct: 0,
  };
  for (let i0 = 0; i0 < N; i0 += HASH_SLICE) {
    await checkpoint(signal);
    hashRows(table, i0, Math.min(N, i0 + HASH_SLICE));
  }
  const U = table.distinct;
  if (U === N) return null;
  await checkpoint(signal);
  const { label, firstRow } = table;
  const out = data instanceof Float32Array ? new Float32Array(U * D) : new Float64Array(U * D);
  for (let u = 0; u < U; u++) for (let k = 0; k < D; k++) out[u * D + k] = data[firstRow[u]! * D + k]!;
  const summed = new Float64Array(U);
  for (let i = 0; i < N; i++) summed[label[i]!]! += w[i]!;
  return { cloud: { ...c, data: out, N: U }, w: summed, label, inputW: w };
}

/** Open addressing over the points' bits: each slot holds the first input row of a location, or -1. */
interface HashTable {
  bits: Uint32Array;
  words: number;
  mask: number;
  slots: Int32Array;
  label: Int32Array;
  /** firstRow[u], u < distinct: the first input row of location u. */
  firstRow: Int32Array;
  distinct: number;
}

/** Rows [i0, i1) into the table. A function of its own: V8 does not swap a running async function's
 *  loop for optimised code. */
function hashRows(t: HashTable, i0: number, i1: number): void {
  const { bits, words, mask, slots, label, firstRow } = t;
  for (let i = i0; i < i1; i++) {
    let h = 0x811c9dc5;
    for (let k = 0; k < words; k++) h = Math.imul(h ^ bits[i * words + k]!, 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    let slot = h & mask;
    for (;;) {
      const r = slots[slot]!;
      if (r < 0) {
        slots[slot] = i;
        label[i] = t.distinct;
        firstRow[t.distinct++] = i;
        break;
      }
      let same = true;
      for (let k = 0; k < words && same; k++) same = bits[r * words + k] === bits[i * words + k];
      if (same) {
        label[i] = label[r]!;
        break;
      }
      slot = (slot + 1) & mask;
    }
  }
}

/** Per-location values (dim per row) back on the input points. */
export function spread(v: Float64Array, m: Merged, dim = 1): Float64Array {
  const N = m.label.length;
  const out = new Float64Array(N * dim);
  for (let i = 0; i < N; i++) {
    const u = m.label[i]!;
    for (let k = 0; k < dim; k++) out[i * dim + k] = v[u * dim + k]!;
  }
  return out;
}

/** Position gradients of the locations (each w_u times a per-unit-weight gradient) back on the
 *  input points: point i gets its share w_i / w_u (0 for a location of zero weight). */
export function spreadWeighted(g: Float64Array, m: Merged, D: number): Float64Array {
  const N = m.label.length;
  const out = new Float64Array(N * D);
  for (let i = 0; i < N; i++) {
    const u = m.label[i]!;
    const total = m.w[u]!;
    const share = total > 0 ? m.inputW[i]! / total : 0;
    for (let k = 0; k < D; k++) out[i * D + k] = share * g[u * D + k]!;
  }
  return out;
}
