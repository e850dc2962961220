// Shared helpers of the GeomLoss tests: reference data, comparisons that report their worst errors,
// seeded clouds.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { Cloud } from '../../src/geomloss/inputs.js';

const here = dirname(fileURLToPath(import.meta.url));
const candidates = [
  process.env.GEOMLOSS_CASES,
  resolve(here, '../../../shared/reference/geomloss-cases.json'),
  resolve(here, '../../shared/reference/geomloss-cases.json'),
  '/work/shared/reference/geomloss-cases.json',
].filter((p): p is string => typeof p === 'string' && p.length > 0);

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Json = any;

export function loadCases(): Json | null {
  const path = candidates.find((p) => existsSync(p));
  return path ? JSON.parse(readFileSync(path, 'utf8')) : null;
}

export const flat = (v: unknown): number[] => Array.from([v].flat(10) as number[]);

export interface Errors {
  /** max_k |d_k| / max(|ref_k|, 1e-6 max|ref|) */
  rel: number;
  /** max_k |d_k| / max|ref| */
  relMax: number;
}

/**
 * Checks |got_k - ref_k| <= rtol |ref_k| + 0.01 rtol max|ref| for every k, and returns the worst
 * errors (relative per entry, and relative to the largest magnitude) for the report.
 */
export function expectMatch(got: ArrayLike<number>, ref: readonly number[], rtol: number, label: string): Errors {
  expect(got.length, `${label}: length`).toBe(ref.length);
  let scale = 0;
  for (let k = 0; k < ref.length; k++) {
    // A NaN or infinite reference would make every comparison below false, so the check would pass silently.
    if (!Number.isFinite(ref[k]!)) expect.fail(`${label}: the reference entry ${k} is ${ref[k]}, not a finite number`);
    scale = Math.max(scale, Math.abs(ref[k]!));
  }
  let rel = 0;
  let relMax = 0;
  let worst = -1;
  let worstExcess = 0;
  for (let k = 0; k < ref.length; k++) {
    const d = Math.abs(got[k]! - ref[k]!);
    if (!Number.isFinite(got[k]!)) {
      worst = k;
      worstExcess = Infinity;
      continue;
    }
    rel = Math.max(rel, d / Math.max(Math.abs(ref[k]!), 1e-6 * scale, Number.MIN_VALUE));
    relMax = Math.max(relMax, scale > 0 ? d / scale : d);
    const excess = d - (rtol * Math.abs(ref[k]!) + 0.01 * rtol * scale);
    if (excess > worstExcess || (excess > 0 && worst < 0)) {
      worst = k;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `${label}: entry ${worst} is ${got[worst]}, expected ${ref[worst]} (rtol ${rtol}, max|ref| ${scale.toExponential(2)})`,
    );
  }
  return { rel, relMax };
}

/** A report table printed after the file's tests. */
export class Report {
  private rows: string[] = [];
  constructor(private readonly title: string) {}
  add(label: string, errors: Record<string, Errors>): void {
    const worst = Object.entries(errors).sort((p, q) => q[1].rel - p[1].rel)[0];
    const parts = Object.entries(errors).map(([k, e]) => `${k} ${e.rel.toExponential(1)}`);
    this.rows.push(
      `${label.padEnd(58)} worst ${worst ? `${worst[1].rel.toExponential(1)} (${worst[0]})` : '-'} | ${parts.join(', ')}`,
    );
  }
  print(): void {
    if (this.rows.length) console.log(['', this.title, ...this.rows].join('\n'));
  }
}

/** mulberry32 */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function cloud(r: () => number, n: number, D: number, shift = 0, spread = 1): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: D }, () => shift + spread * r()));
}

export function weights(r: () => number, n: number): number[] {
  const w = Array.from({ length: n }, () => 0.2 + r());
  const s = w.reduce((u, v) => u + v, 0);
  return w.map((v) => v / s);
}

export const uniform = (n: number): number[] => new Array<number>(n).fill(1 / n);

/** The data rounded as a float32 computation sees it. */
export const f32 = (rows: number[][]): number[][] => rows.map((r) => r.map((v) => Math.fround(v)));

/** A float64 point array (N x D, row-major) as the hierarchy's unbatched `Cloud`. */
export const levelCloud = (name: string, data: Float64Array, D: number): Cloud => ({
  name,
  data,
  B: 1,
  N: data.length / D,
  D,
  batched: false,
  natural: 'float64',
});
