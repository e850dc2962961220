// Point clouds and weights as SamplesLoss accepts them, checked and flattened.
import { GeomLossError } from './options.js';

/** A flat typed array with its shape: [N, D] for one cloud, [B, N, D] for a batch. */
export interface ShapedPoints {
  /** The coordinates, row-major; a Float32Array makes the loss float32 unless `dtype` says otherwise. */
  data: Float32Array | Float64Array | readonly number[];
  /** [N, D] or [B, N, D]; their product must be data.length. */
  shape: readonly [number, number] | readonly [number, number, number];
}

/** One cloud: `number[][]` ([N][D]) or { data, shape: [N, D] }. */
export type Points =
  | readonly (readonly number[])[]
  | (ShapedPoints & {
      /** [N, D]. */
      shape: readonly [number, number];
    });
/** A batch of clouds: `number[][][]` ([B][N][D]) or { data, shape: [B, N, D] }. */
export type BatchedPoints =
  | readonly (readonly (readonly number[])[])[]
  | (ShapedPoints & {
      /** [B, N, D]. */
      shape: readonly [number, number, number];
    });
/** One cloud or a batch: what the untyped overloads of SamplesLoss accept. */
export type AnyPoints = Points | BatchedPoints | ShapedPoints;

/** Weights: `number[]` or a typed array of N values (B*N, row-major, for a batch), or `number[][]` ([B][N]). */
export type Weights = readonly number[] | readonly (readonly number[])[] | Float32Array | Float64Array;

/** One label per point: integers 0..L-1, as an Int32Array or a number[]. */
export type Labels = Int32Array | readonly number[];

/** The optional weights of the two clouds, the third argument of every SamplesLoss method. */
export interface WeightsArgument {
  /** Weights of x (default uniform, 1/N; with labels, 1/N_l within each label l). */
  a?: Weights | null;
  /** Weights of y (default uniform, 1/M; with labels, 1/M_l within each label l). */
  b?: Weights | null;
  /** Labelled (ragged) batch: the label (0..L-1) of each point of x; requires `labelsY`. Point i of x
   *  is compared with the points of y of the same label only: L independent problems in one pass of
   *  block-diagonal reductions, one value per label (a `number[]` of length L), the gradients of
   *  their sum. Loss 'sinkhorn' on the online backend ('auto' runs it online), single clouds only.
   *  The weights are used as given (default: uniform within each label); as for a batch, one epsilon
   *  schedule serves every label, from the diameter of all the points (pass `diameter` or use
   *  `convergence` to match separate calls). Every label 0..L-1 needs points in both clouds.
   *  @throws GeomLossError for a label missing from x or y (named), a different L, a wrong length, a
   *  non-integer label, another loss or backend 'multiscale'. */
  labelsX?: Labels | null;
  /** The label (0..L-1) of each point of y; the same L as `labelsX`. */
  labelsY?: Labels | null;
}

/** Weights with labels: `value` then gives one number per label (see {@link WeightsArgument}). */
export interface LabelledWeights extends WeightsArgument {
  /** The label of each point of x. */
  labelsX: Labels;
  /** The label of each point of y. */
  labelsY: Labels;
}

/** Points grouped by label: perm[r] is the input row of sorted row r, rows of label l are
 *  ranges[2l] .. ranges[2l + 1], `of` the label of each sorted row. */
export interface LabelGroups {
  readonly perm: Int32Array;
  readonly ranges: Int32Array;
  readonly of: Int32Array;
}

/** The labels of one cloud, checked: one integer label in [0, 2^31) per point. */
export function parseLabels(name: string, input: unknown, cloud: Cloud): Int32Array {
  if (!(input instanceof Int32Array) && !Array.isArray(input))
    throw new GeomLossError(`${name} must be an Int32Array or a number[] (one label per point of ${cloud.name})`);
  const labels = input as ArrayLike<unknown>;
  if (labels.length !== cloud.N)
    throw new GeomLossError(`${name} has ${labels.length} labels but ${cloud.name} has N = ${cloud.N} points`);
  const out = new Int32Array(cloud.N);
  for (let k = 0; k < labels.length; k++) {
    const v = labels[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff)
      throw new GeomLossError(`${name}[${k}] is ${String(v)}: labels must be integers 0..L-1`);
    out[k] = v;
  }
  return out;
}

/** A stable counting sort of the points by label; every label 0..L-1 needs a point. */
export function groupByLabel(name: string, labels: Int32Array, L: number, cloudName: string): LabelGroups {
  const counts = new Int32Array(L + 1);
  for (const l of labels) counts[l + 1]!++;
  for (let l = 0; l < L; l++) {
    if (counts[l + 1] === 0)
      throw new GeomLossError(
        `label ${l} has no points in ${cloudName} (${name}): every label 0..L-1 (L = ${L}) needs points in both clouds`,
      );
    counts[l + 1]! += counts[l]!;
  }
  const ranges = new Int32Array(2 * L);
  for (let l = 0; l < L; l++) {
    ranges[2 * l] = counts[l]!;
    ranges[2 * l + 1] = counts[l + 1]!;
  }
  const next = counts.slice(0, L);
  const perm = new Int32Array(labels.length);
  const of = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const r = next[labels[i]!]!++;
    perm[r] = i;
    of[r] = labels[i]!;
  }
  return { perm, ranges, of };
}

/** A validated cloud: `data` is row-major [B, N, D]. */
export interface Cloud {
  readonly name: string;
  readonly data: Float32Array | Float64Array;
  readonly B: number;
  readonly N: number;
  readonly D: number;
  readonly batched: boolean;
  /** float32 when the data came as a Float32Array, float64 for a Float64Array, null for plain numbers. */
  readonly natural: 'float32' | 'float64' | null;
}

const isTyped = (v: unknown): v is Float32Array | Float64Array =>
  v instanceof Float32Array || v instanceof Float64Array;

export function parseCloud(name: string, input: unknown): Cloud {
  if (input === null || input === undefined) throw new GeomLossError(`${name} is required: an [N, D] array of points`);
  if (Array.isArray(input)) {
    if (input.length === 0) throw new GeomLossError(`${name} is empty: expected an [N, D] array with N >= 1`);
    const batched = Array.isArray(input[0]) && Array.isArray((input[0] as unknown[])[0]);
    const items = (batched ? input : [input]) as unknown[][];
    const B = items.length;
    const first = items[0]!;
    if (!Array.isArray(first) || first.length === 0)
      throw new GeomLossError(`${name}${batched ? '[0]' : ''} is empty: each cloud needs N >= 1 points`);
    const N = first.length;
    const row0 = first[0];
    if (!Array.isArray(row0) || row0.length === 0) {
      throw new GeomLossError(`${name} must be an [N, D] array of points (number[][]) with D >= 1, or { data, shape }`);
    }
    const D = row0.length;
    const data = new Float64Array(B * N * D);
    for (let b = 0; b < B; b++) {
      const item = items[b];
      const where = batched ? `${name}[${b}]` : name;
      if (!Array.isArray(item) || item.length !== N) {
        throw new GeomLossError(
          `${where} has ${Array.isArray(item) ? item.length : 'no'} points; every batch item must have N = ${N}`,
        );
      }
      for (let i = 0; i < N; i++) {
        const row = item[i];
        if (!Array.isArray(row) || row.length !== D) {
          throw new GeomLossError(
            `${where}[${i}] has ${Array.isArray(row) ? row.length : 'no'} coordinates, expected D = ${D}`,
          );
        }
        for (let k = 0; k < D; k++) {
          const v = row[k];
          if (typeof v !== 'number' || !Number.isFinite(v)) {
            throw new GeomLossError(
              `${where}[${i}][${k}] is ${String(v)}: coordinates of ${name} must be finite numbers`,
            );
          }
          data[(b * N + i) * D + k] = v;
        }
      }
    }
    return { name, data, B, N, D, batched, natural: null };
  }
  if (typeof input === 'object' && 'data' in input && 'shape' in input) {
    const { data, shape } = input as ShapedPoints;
    if (
      !Array.isArray(shape) ||
      (shape.length !== 2 && shape.length !== 3) ||
      !shape.every((s) => Number.isInteger(s) && s >= 1)
    ) {
      throw new GeomLossError(
        `${name}.shape must be [N, D] or [B, N, D] with positive integers, got ${JSON.stringify(shape)}`,
      );
    }
    const batched = shape.length === 3;
    const [B, N, D] = batched ? (shape as [number, number, number]) : [1, shape[0]!, shape[1]!];
    let values: Float32Array | Float64Array;
    let natural: Cloud['natural'];
    if (isTyped(data)) {
      values = data;
      natural = data instanceof Float32Array ? 'float32' : 'float64';
    } else if (Array.isArray(data)) {
      values = Float64Array.from(data as number[]);
      natural = null;
    } else throw new GeomLossError(`${name}.data must be a Float32Array, a Float64Array or a number[]`);
    if (values.length !== B * N * D) {
      throw new GeomLossError(
        `${name}.data has ${values.length} values but ${name}.shape [${shape.join(', ')}] needs ${B * N * D}`,
      );
    }
    for (let k = 0; k < values.length; k++) {
      if (!Number.isFinite(values[k]!)) {
        const row = Math.floor(k / D);
        throw new GeomLossError(
          `${name} has a non-finite coordinate (${values[k]}) at ${batched ? `[${Math.floor(row / N)}][${row % N}]` : `[${row}]`}[${k % D}]`,
        );
      }
    }
    return { name, data: values, B, N, D, batched, natural };
  }
  throw new GeomLossError(
    `${name} must be an [N, D] array (number[][]), a batch [B, N, D] (number[][][]) or { data, shape }`,
  );
}

/** Checks that x and y can be compared. */
export function checkPair(x: Cloud, y: Cloud): void {
  if (x.D !== y.D)
    throw new GeomLossError(`x and y must have the same dimension D: x has D = ${x.D}, y has D = ${y.D}`);
  if (x.batched !== y.batched) {
    throw new GeomLossError(
      `x and y must both be batched ([B, N, D]) or both single clouds ([N, D]); x is ${x.batched ? 'batched' : 'a single cloud'}, y is ${y.batched ? 'batched' : 'a single cloud'}`,
    );
  }
  if (x.B !== y.B) throw new GeomLossError(`x and y must have the same batch size: x has B = ${x.B}, y has B = ${y.B}`);
}

/** Weights as a float64 [B, N] array; uniform 1/N when absent. */
export function parseWeights(name: string, input: unknown, cloud: Cloud): Float64Array {
  const { B, N } = cloud;
  const out = new Float64Array(B * N);
  if (input === undefined || input === null) return out.fill(1 / N);
  let flat: ArrayLike<unknown>;
  if (isTyped(input)) flat = input;
  else if (Array.isArray(input)) {
    if (input.length > 0 && Array.isArray(input[0])) {
      if (!cloud.batched)
        throw new GeomLossError(
          `${name} is a [B, N] array but ${cloud.name} is a single cloud; pass ${name} as number[] of length ${N}`,
        );
      if (input.length !== B)
        throw new GeomLossError(`${name} has ${input.length} rows but ${cloud.name} has a batch of B = ${B}`);
      for (const [b, row] of (input as unknown[]).entries()) {
        if (!Array.isArray(row) || row.length !== N) {
          throw new GeomLossError(
            `${name}[${b}] has ${Array.isArray(row) ? row.length : 'no'} weights but ${cloud.name} has N = ${N} points per item`,
          );
        }
      }
      flat = (input as unknown[][]).flat();
    } else flat = input;
  } else throw new GeomLossError(`${name} must be a number[], a number[][] (batched) or a typed array`);
  if (flat.length !== B * N) {
    throw new GeomLossError(
      `${name} has ${flat.length} weights but ${cloud.name} has ${cloud.batched ? `B * N = ${B} * ${N} = ${B * N}` : `N = ${N}`} points`,
    );
  }
  for (let k = 0; k < flat.length; k++) {
    const v = flat[k];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new GeomLossError(`${name}[${k}] is ${String(v)}: weights must be finite numbers`);
    if (v < 0) throw new GeomLossError(`${name}[${k}] is ${v}: weights must be non-negative`);
    out[k] = v;
  }
  for (let b = 0; b < B; b++) {
    let total = 0;
    for (let i = 0; i < N; i++) total += out[b * N + i]!;
    if (!(total > 0))
      throw new GeomLossError(
        `${name}${cloud.batched ? `[${b}]` : ''} has all-zero weights: a measure needs a positive total mass`,
      );
  }
  return out;
}

/**
 * Balanced optimal transport moves all of a's mass onto b's: it needs equal total masses (per batch
 * item). Unequal ones would run and return a number that is not a transport cost, so they are refused,
 * to a relative tolerance that the precision's rounding of the weights cannot reach (1e-6 in float64,
 * 1e-4 in float32); unbalanced OT (`reach`) accepts any masses.
 */
export function checkBalancedMasses(
  a: Float64Array,
  b: Float64Array,
  x: Cloud,
  y: Cloud,
  dtype: 'float32' | 'float64',
): void {
  const tolerance = dtype === 'float32' ? 1e-4 : 1e-6;
  for (let item = 0; item < x.B; item++) {
    let ma = 0;
    let mb = 0;
    for (let i = 0; i < x.N; i++) ma += a[item * x.N + i]!;
    for (let j = 0; j < y.N; j++) mb += b[item * y.N + j]!;
    if (Math.abs(ma - mb) > tolerance * Math.max(ma, mb)) {
      const where = x.batched ? ` in batch item ${item}` : '';
      throw new GeomLossError(
        `balanced Sinkhorn needs equal total masses, but sum(a) = ${ma} and sum(b) = ${mb}${where} (relative gap ${(Math.abs(ma - mb) / Math.max(ma, mb)).toExponential(2)} > ${tolerance}); normalise the weights, or set reach for unbalanced OT`,
      );
    }
  }
}

/** The computation's precision: the option, else float32 when an input is a Float32Array. */
export function resolveDType(option: 'float32' | 'float64' | null, x: Cloud, y: Cloud): 'float32' | 'float64' {
  if (option !== null) return option;
  if (x.natural !== null && y.natural !== null && x.natural !== y.natural) {
    throw new GeomLossError(
      `x is ${x.natural} but y is ${y.natural}; pass { dtype } to SamplesLoss or convert the data`,
    );
  }
  return x.natural ?? y.natural ?? 'float64';
}

/** The data in the computation's precision (no copy when it already is). */
export function inDType(data: Float32Array | Float64Array, dtype: 'float32' | 'float64'): Float32Array | Float64Array {
  if (dtype === 'float32') return data instanceof Float32Array ? data : Float32Array.from(data);
  return data instanceof Float64Array ? data : Float64Array.from(data);
}
