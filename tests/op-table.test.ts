// The operation table is complete: every operation record of src/core/ops.ts has a row in the op test
// table (tests/helpers/op-cases.ts, which the operation tests of both engines and the derivative
// tests run) and a float64 reference, and that reference (what `dense()` evaluates) agrees with the
// rows' independent plain-TypeScript references. A new record without a row fails here.
import { describe, expect, it } from 'vitest';
import { Vi, Vj } from '../src/index.js';
import * as ops from '../src/core/ops.js';
import { postOrder } from '../src/core/formula.js';
import type { OpDef } from '../src/core/op-def.js';
import { caseData, cases } from './helpers/op-cases.js';

const isOpDef = (v: unknown): v is OpDef =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as OpDef).name === 'string' &&
  ['shape', 'reference', 'print', 'vjp', 'tile', 'wgsl'].every(
    (m) => typeof (v as unknown as Record<string, unknown>)[m] === 'function',
  );

const records = Object.entries(ops).filter((e): e is [string, OpDef] => isOpDef(e[1]));

/** The records each row's formula uses. */
const used = new Map<OpDef, string[]>();
for (const c of cases) {
  const { xs, ys } = caseData(c, 7, 2, 3);
  const F = c.build(Vi(xs), Vj(ys));
  for (const node of postOrder(F.node)) {
    if (node.kind !== 'op') continue;
    const rows = used.get(node.def) ?? [];
    rows.push(c.name);
    used.set(node.def, rows);
  }
}

describe('the operation table', () => {
  it('finds the records', () => {
    expect(records.length).toBeGreaterThan(50);
    expect(new Set(records.map(([, r]) => r.name)).size).toBe(records.length);
  });

  it.each(records.map(([exportName, record]) => ({ exportName, record })))(
    '$exportName has a test row and a float64 reference',
    ({ record }) => {
      expect(used.get(record) ?? [], `no row of tests/helpers/op-cases.ts uses ${record.name}`).not.toEqual([]);
      expect(record.reference.length, `${record.name}.reference takes (args, params)`).toBeGreaterThan(0);
    },
  );

  it.each(cases)('row $name: the records\u2019 dense reference equals the row\u2019s own reference', (c) => {
    const N = 3;
    const M = 4;
    const { xs, ys } = caseData(c, 99, N, M);
    const F = c.build(Vi(xs), Vj(ys));
    const dense = F.dense();
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < M; j++) {
        const want = c.ref(xs[i]!, ys[j]!);
        const got = dense[i]![j]!;
        expect(got.length).toBe(want.length);
        got.forEach((g, k) => {
          const w = want[k]!;
          if (Number.isNaN(w)) expect(g).toBeNaN();
          else if (!Number.isFinite(w)) expect(g).toBe(w);
          else
            expect(Math.abs(g - w), `${c.name} [${i}, ${j}, ${k}]: ${g} vs ${w}`).toBeLessThanOrEqual(
              1e-12 * (1 + Math.abs(w)),
            );
        });
      }
    }
  });
});
