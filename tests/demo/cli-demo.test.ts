// `npm run demo` (examples/demo.mjs) in its quick mode (4000 points): every step prints its stats
// line (size, engine, threads, time and CPU time, peak memory) and a passing check, stdout is not a terminal so
// there is no progress bar, and nothing at all goes to stderr (no warnings, from Dawn or anyone); on a
// pseudo-terminal (script(1)) each step draws a bar and erases it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script, without declarations
import { distIsStale } from '../../scripts/demo.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const built = existsSync(path.join(root, 'dist/index.js')) && existsSync(path.join(root, 'dist/geomloss.js'));
if (!built) console.warn('demo test skipped: needs dist/ (npm run build)');

function runDemo(args: string[], env: Record<string, string | undefined> = {}) {
  return spawnSync(process.execPath, [path.join(root, 'examples/demo.mjs'), ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 110_000,
  });
}

describe.skipIf(!built)('npm run demo (quick mode)', () => {
  it('prints four checked steps and nothing on stderr', () => {
    const r = runDemo(['--quick']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(r.stdout.includes('\r') || r.stdout.includes('\u001b')).toBe(false); // not a terminal: no bar
    expect(lines[0]).toMatch(/^lazytensor demo: 4000 points, float32/);
    expect(lines[1]).toMatch(/engine wasm \(WebAssembly SIMD: no hardware GPU found\)$/);
    const titles = lines.filter((l) => /^\d\/4 /.test(l));
    expect(titles).toEqual([
      '1/4 K-nearest neighbours (K = 10) of 4000 points in 3-D',
      '2/4 Gaussian kernel sum at 4000 x 4000',
      '3/4 Sinkhorn divergence + gradient, two clouds of 4000 points in 2-D (multiscale)',
      '4/4 kernel solve (alpha I + K) a = t, 4000 points (Gaussian process)',
    ]);
    const stats = lines.filter((l) => / \| peak RSS /.test(l));
    expect(stats).toHaveLength(4);
    for (const l of stats)
      expect(l).toMatch(/^ {4}4000 .+ \| wasm, \d+ threads? \| \d+\.\d\d s \(CPU \d+\.\d\d s\) \| peak RSS \d+ MiB$/);
    const checks = lines.filter((l) => /^ {4}check /.test(l));
    expect(checks).toHaveLength(4);
    for (const l of checks) expect(l).toMatch(/^ {4}check ok: /);
    // The numbers behind the verdicts.
    expect(checks[0]).toMatch(
      /1000 of 1000 neighbours of 100 sampled points equal a float64 brute force over all 4000; 4000 of 4000 rows certified exact/,
    );
    const kernelError = Number(/largest relative error (\S+) /.exec(checks[1]!)![1]);
    expect(kernelError).toBeLessThan(1e-4);
    const [, value, percent] = /value (\S+), (-?[\d.]+)% from the continuous W2\^2\/2 = 0\.01583/.exec(checks[2]!)!;
    expect(Number.isFinite(Number(value))).toBe(true);
    expect(Math.abs(Number(percent))).toBeLessThan(10);
    // The sampling noise it is compared with: sqrt(D (Var f_1 + Var g_1) / N) of the continuous
    // potentials' sample means, 3.42% of the value at 4000 points, and the bound the verdict used.
    const [, std, allowance] = /\(sampling std ([\d.]+)%; allowed: 3 std \+ ([\d.]+)% for the solver\)/.exec(
      checks[2]!,
    )!;
    expect(Number(std)).toBeCloseTo(3.42, 2);
    expect(Math.abs(Number(percent))).toBeLessThan(3 * Number(std) + Number(allowance));
    const residual = Number(/all columns: (\S+) of max \|t\|/.exec(checks[3]!)![1]);
    expect(residual).toBeLessThan(1e-3);
    expect(lines.at(-1)).toMatch(/^total \d+\.\d\d s, process peak RSS \d+ MiB$/);
    // Nothing else: two header lines, a blank, three lines per step, a blank, the total.
    const known = [/^lazytensor demo: /, /^Node /, /^$/, /^\d\/4 /, / \| peak RSS /, /^ {4}check /, /^total /];
    expect(lines.filter((l) => !known.some((pattern) => pattern.test(l)))).toEqual([]);
    expect(lines).toHaveLength(2 + 1 + 3 * 4 + 1 + 1);
  });

  it('probes for a GPU without a word on stderr, and stays on WebAssembly without a hardware adapter', () => {
    // No Vulkan driver: Dawn warns in the probing child process, whose stderr is discarded.
    const none = runDemo(['--quick'], { LAZYTENSOR_DEMO_PROBE: '1', VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    expect(none.stderr).toBe('');
    expect(none.status).toBe(0);
    expect(none.stdout).toMatch(/engine wasm \(WebAssembly SIMD: no hardware GPU found\)/);
    // SwiftShader answers, but a CPU-emulated adapter is no reason to leave WebAssembly.
    if (existsSync('/usr/lib/chromium/vk_swiftshader_icd.json')) {
      const swiftshader = runDemo(['--quick'], {
        LAZYTENSOR_DEMO_PROBE: '1',
        VK_ICD_FILENAMES: '/usr/lib/chromium/vk_swiftshader_icd.json',
      });
      expect(swiftshader.stderr).toBe('');
      expect(swiftshader.stdout).toMatch(/engine wasm \(WebAssembly SIMD: no hardware GPU found\)/);
    }
  });

  it.skipIf(!existsSync('/usr/bin/script'))('on a terminal, draws a progress bar per step and clears it', () => {
    // util-linux's script(1) gives the demo a pseudo-terminal; LAZYTENSOR_DEMO_BAR_MS=0 draws the bar
    // from a step's first tick (100 ms) instead of after a second, so the quick steps show it too.
    const r = spawnSync('/usr/bin/script', ['-qec', `${process.execPath} examples/demo.mjs --quick`, '/dev/null'], {
      cwd: root,
      env: { ...process.env, LAZYTENSOR_DEMO_BAR_MS: '0', COLUMNS: '200' },
      encoding: 'utf8',
      timeout: 110_000,
    });
    expect(r.status, r.stdout).toBe(0);
    // Bars: a carriage return, the step's label, a bar of 24 cells or a spinner, the elapsed time.
    const bars = r.stdout
      .split('\r')
      .filter((l) => /^ {2}\d\/4 \S+ {2}(\[[#.]{24}\] +\d+%|[|/\\-]) {2}\d+\.\d s/.test(l));
    expect(bars.length, r.stdout).toBeGreaterThan(0);
    expect(
      bars.some((l) => /\[[#.]{24}\] +\d+%/.test(l)),
      'a bar with a fraction (onProgress)',
    ).toBe(true);
    // Each bar is erased (carriage return, erase to the end of the line) before the step's lines.
    const ERASE = '\r\u001b[K';
    const lines = r.stdout
      .split('\n')
      .map((l) => (l.includes(ERASE) ? l.slice(l.lastIndexOf(ERASE) + ERASE.length) : l).replace(/\r$/, ''))
      .filter((l) => /^\d\/4 |^ {4}check /.test(l));
    expect(lines.filter((l) => /^ {4}check ok: /.test(l))).toHaveLength(4);
    expect(lines.filter((l) => /^\d\/4 /.test(l))).toHaveLength(4);
  });

  it('refuses an unknown argument or engine with a message and exit code 2', () => {
    const bad = runDemo(['--fast']);
    expect(bad.status).toBe(2);
    expect(bad.stdout).toMatch(/unknown argument '--fast'/);
    const engine = runDemo(['--quick', '--engine=cuda']);
    expect(engine.status).toBe(2);
    expect(engine.stdout).toMatch(/--engine must be auto, wasm or webgpu, got 'cuda'/);
  });
});

describe('npm run demo (scripts/demo.mjs): builds only when dist/ is missing or stale', () => {
  it('compares the newest build input with the oldest output', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lazytensor-demo-'));
    try {
      const file = (name: string, seconds: number) => {
        mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        writeFileSync(path.join(dir, name), '');
        utimesSync(path.join(dir, name), seconds, seconds);
      };
      file('src/core/a.ts', 1000);
      file('assembly/kernel.ts', 1000);
      expect(distIsStale(dir)).toBe(true); // no dist/
      file('dist/index.js', 2000);
      expect(distIsStale(dir)).toBe(true); // dist/geomloss.js missing
      file('dist/geomloss.js', 2000);
      expect(distIsStale(dir)).toBe(false);
      file('src/core/b.ts', 3000); // a source edited after the build
      expect(distIsStale(dir)).toBe(true);
      file('dist/index.js', 4000);
      file('dist/geomloss.js', 4000);
      file('package.json', 5000);
      expect(distIsStale(dir)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
