// Runs every example of examples/ (the KeOps and GeomLoss tutorial ports) in a child process on the
// built package (dist/, made by `npm run build`, which `npm test` runs first), as a user would:
// `node examples/NAME.mjs`. Each example checks itself against plain float64 JavaScript and ends with
// `check: ok (NAME)`, or `check: FAILED ...` and a non-zero exit code.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The examples, in the order of examples/README.md. */
export const EXAMPLES = [
  'reductions',
  'kmeans',
  'gmm',
  'knn',
  'kernel-interpolation',
  'block-sparse',
  'autodiff',
  'attention',
  'vicsek',
  'gradient-flow',
  'transport',
  'unbalanced',
  'kernel-norms',
] as const;

function run(name: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [`examples/${name}.mjs`], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}

describe('examples', () => {
  it('run on the built package', () => {
    expect(
      existsSync(new URL('../../dist/index.js', import.meta.url)),
      'dist/index.js is missing: run npm run build',
    ).toBe(true);
    expect(existsSync(new URL('../../dist/geomloss.js', import.meta.url))).toBe(true);
  });

  it('are listed in examples/README.md', () => {
    const index = readFileSync(new URL('../../examples/README.md', import.meta.url), 'utf8');
    for (const name of EXAMPLES) {
      expect(existsSync(new URL(`../../examples/${name}.mjs`, import.meta.url)), name).toBe(true);
      expect(index, name).toContain(`[${name}.mjs](${name}.mjs)`);
    }
  });

  for (const name of EXAMPLES) {
    // Each takes a few seconds (under 30 s on a quiet 2-core machine); the margin is for loaded CI.
    it(`${name}.mjs checks itself`, { timeout: 180_000 }, async () => {
      const { code, stdout, stderr } = await run(name);
      const lines = stdout.trim().split('\n');
      expect(
        lines.filter((l) => l.trimStart().startsWith('FAIL')),
        `${stdout}\n${stderr}`,
      ).toEqual([]);
      expect(lines.at(-1), `${stdout}\n${stderr}`).toBe(`check: ok (${name})`);
      expect(code, stderr).toBe(0);
    });
  }
});
