// The built bundle (dist/index.js, made by `npm run build` before the tests) is self-contained: it
// runs in Node, and it has no file-system or Node-only imports, so browsers, bundlers and edge
// runtimes load the same file (the Wasm kernel is inlined).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const bundlePath = new URL('../dist/index.js', import.meta.url);

describe('the built package', () => {
  it('imports nothing and reads no files', () => {
    const source = readFileSync(bundlePath, 'utf8');
    expect(source).not.toMatch(/^\s*import\s/m);
    expect(source).not.toMatch(/require\(|node:|\bfs\b\.|fetch\(|\.wasm['"]/);
  });

  it('runs a reduction from dist/index.js', async () => {
    const lt = (await import(/* @vite-ignore */ bundlePath.href)) as typeof import('../src/index.js');
    const x = lt.Vi(new Float32Array([0, 0, 1, 1]), 2);
    const y = lt.Vj(new Float32Array([0, 1, 1, 0, 2, 2]), 2);
    const s = await x.sqDist(y).sum(1);
    expect(Array.from(s.data)).toEqual([1 + 1 + 8, 1 + 1 + 2]);
    expect(s.engine).toBe('wasm');
  });

  it('ships type declarations', () => {
    const types = readFileSync(new URL('../dist/types/src/index.d.ts', import.meta.url), 'utf8');
    expect(types).toMatch(/export \{ LazyTensor, Pm, Vi, Vj \}/);
  });
});
