// The web demo (demo/web/, served by `node demo/serve.mjs`, what `npm run demo:web` runs) in headless
// Chromium: it loads with no console error or warning, the gradient flow's loss decreases and the
// points move toward the target, K-means assigns every point to its nearest centroid (checked in
// float64 here), the engine switch reaches WebGPU, and a screenshot is saved as
// artifacts/web-demo.png (a CI artifact). Never downloads a browser: skipped when /usr/bin/chromium,
// playwright-core or dist/ is missing.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, chromiumReady, launchChromium } from '../helpers/chromium.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCREENSHOT = path.join(root, 'artifacts/web-demo.png');

const ready = chromiumReady;
if (!ready) console.warn(`web demo test skipped: ${chromiumMissing}`);

interface DemoApi {
  ready: Promise<void>;
  setEngine(engine: 'wasm' | 'webgpu'): void;
  flowStep(): Promise<number>;
  kmStep(): Promise<number>;
  flowState(): { x: Float32Array; x0: Float32Array; y: Float32Array; losses: number[]; steps: number };
  kmState(): { x: Float32Array; c: Float32Array; labels: Int32Array; iteration: number; changed: number };
}
declare global {
  interface Window {
    lazytensorDemo: DemoApi;
  }
}
type Page = import('playwright-core').Page;

// The page's typed arrays cross as base64 (a plain array of 10^5 numbers takes seconds to serialise).
const decodeF32 = (b64: string) => Array.from(new Float32Array(new Uint8Array(Buffer.from(b64, 'base64')).buffer));
const decodeI32 = (b64: string) => Array.from(new Int32Array(new Uint8Array(Buffer.from(b64, 'base64')).buffer));
const ENCODE = `(a) => { const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength); let s = '';
  for (let k = 0; k < u.length; k += 8192) s += String.fromCharCode(...u.subarray(k, k + 8192)); return btoa(s); }`;

/** Waits for the page's module (imported dynamically, after the load event) and its set-up. */
async function openDemo(page: Page): Promise<void> {
  await page.waitForFunction(() => window.lazytensorDemo !== undefined);
  await page.evaluate(() => window.lazytensorDemo.ready);
}

async function flowState(page: Page) {
  const s = (await page.evaluate(`(() => { const enc = ${ENCODE}; const s = window.lazytensorDemo.flowState();
    return { x: enc(s.x), y: enc(s.y), losses: s.losses, steps: s.steps }; })()`)) as {
    x: string;
    y: string;
    losses: number[];
    steps: number;
  };
  return { ...s, x: decodeF32(s.x), y: decodeF32(s.y) };
}

async function kmState(page: Page) {
  const s = (await page.evaluate(`(() => { const enc = ${ENCODE}; const s = window.lazytensorDemo.kmState();
    return { x: enc(s.x), c: enc(s.c), labels: enc(s.labels) }; })()`)) as { x: string; c: string; labels: string };
  return { x: decodeF32(s.x), c: decodeF32(s.c), labels: decodeI32(s.labels) };
}

/** Mean distance from each point of `a` to its nearest point of `b` (2-D, float64 brute force). */
function meanNearest(a: number[], b: number[]): number {
  let total = 0;
  for (let i = 0; i < a.length / 2; i++) {
    let best = Infinity;
    for (let j = 0; j < b.length / 2; j++)
      best = Math.min(best, (a[2 * i]! - b[2 * j]!) ** 2 + (a[2 * i + 1]! - b[2 * j + 1]!) ** 2);
    total += Math.sqrt(best);
  }
  return total / (a.length / 2);
}

/** Starts `node demo/serve.mjs` on a free port; resolves to the URL it prints. */
function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(root, 'demo/serve.mjs')], {
    cwd: root,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/demo\/web\/)/.exec(text);
      if (m) resolve({ child, url: m[1]! });
    });
    child.once('exit', (code) => reject(new Error(`demo/serve.mjs exited with ${code}: ${text}`)));
  });
}

describe.skipIf(!ready)('web demo in headless Chromium', () => {
  let server: ChildProcess;
  let url: string;
  let browser: import('playwright-core').Browser;

  beforeAll(async () => {
    ({ child: server, url } = await startServer());
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill();
      await exited;
    }
  });

  it('serves the page with a redirect from / and plain static headers', async () => {
    const home = await fetch(url.replace('/demo/web/', '/'), { redirect: 'manual' });
    expect(home.status).toBe(302);
    expect(home.headers.get('location')).toBe('/demo/web/');
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('cross-origin-opener-policy')).toBeNull();
    expect(page.headers.get('cross-origin-embedder-policy')).toBeNull();
    expect((await fetch(url.replace('/demo/web/', '/.git/HEAD'))).status).toBe(404);
    expect((await fetch(url.replace('/demo/web/', '/dist/index.js'))).headers.get('content-type')).toBe(
      'text/javascript',
    );
  });

  it('runs the flow and K-means with no console message, and saves a screenshot', async () => {
    const page = await browser.newPage({ viewport: { width: 1180, height: 900 } });
    const messages: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') messages.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => messages.push(`pageerror: ${String(e)}`));
    await page.goto(url);
    await openDemo(page);

    // The engine shown: SwiftShader is a CPU emulation, so the page starts on WebAssembly.
    const status = await page.textContent('#status');
    expect(status).toMatch(/running on WebAssembly · WebAssembly: \d+ threads? · WebGPU: .*swiftshader/i);

    // The gradient flow: 6 steps from the first preset.
    const before = await flowState(page);
    const losses = await page.evaluate(async () => {
      const out: number[] = [];
      for (let k = 0; k < 6; k++) out.push(await window.lazytensorDemo.flowStep());
      return out;
    });
    const after = await flowState(page);
    expect(before.x.length).toBe(2 * 2000);
    expect(after.steps).toBe(6);
    for (let k = 1; k < losses.length; k++) expect(losses[k]!).toBeLessThan(losses[k - 1]!);
    expect(losses[5]!).toBeLessThan(0.2 * losses[0]!);
    // Closer to the target cloud, measured here in float64 from the positions.
    const d0 = meanNearest(before.x, before.y);
    const d1 = meanNearest(after.x, after.y);
    expect(d1).toBeLessThan(0.5 * d0);
    expect(await page.textContent('#flow-timing')).toMatch(/step 6: loss \S+ · valueAndGrad [\d.]+ ms on wasm/);

    // K-means: each iteration's labels are the nearest centroids of the previous iteration (float64).
    for (let k = 0; k < 8; k++) {
      const { c } = await kmState(page);
      await page.evaluate(() => window.lazytensorDemo.kmStep());
      const { x, labels } = await kmState(page);
      let wrong = 0;
      for (let i = 0; i < x.length / 2; i++) {
        let best = Infinity;
        for (let j = 0; j < c.length / 2; j++)
          best = Math.min(best, (x[2 * i]! - c[2 * j]!) ** 2 + (x[2 * i + 1]! - c[2 * j + 1]!) ** 2);
        const l = labels[i]!;
        const got = (x[2 * i]! - c[2 * l]!) ** 2 + (x[2 * i + 1]! - c[2 * l + 1]!) ** 2;
        if (got > best + 1e-6 * Math.max(best, 1e-6)) wrong++;
      }
      expect(wrong).toBe(0);
    }
    expect(await page.textContent('#km-timing')).toMatch(/iteration 8: argMin [\d.]+ ms on wasm \(50000 x 12\)/);

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);

    // The engine switch: one K-means iteration on WebGPU (the SwiftShader adapter), then back.
    await page.selectOption('#engine', 'webgpu');
    expect(await page.textContent('#status')).toMatch(/^running on WebGPU/);
    await page.evaluate(() => window.lazytensorDemo.kmStep());
    expect(await page.textContent('#km-timing')).toMatch(/argMin [\d.]+ ms on webgpu/);
    await page.selectOption('#engine', 'wasm');
    await page.evaluate(() => window.lazytensorDemo.kmStep());
    expect(await page.textContent('#km-timing')).toMatch(/argMin [\d.]+ ms on wasm/);

    await page.close();
    expect(messages).toEqual([]);
  });

  it('draws a target with the mouse and flows toward it', async () => {
    const page = await browser.newPage({ viewport: { width: 1180, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    await openDemo(page);
    const box = (await page.locator('#flow-canvas').boundingBox())!;
    // A horizontal stroke in the upper half: the first stroke replaces the preset target.
    await page.mouse.move(box.x + 100, box.y + 80);
    await page.mouse.down();
    for (let k = 1; k <= 20; k++) await page.mouse.move(box.x + 100 + 16 * k, box.y + 80);
    await page.mouse.up();
    const drawn = await flowState(page);
    expect(drawn.y.length / 2).toBeGreaterThanOrEqual(21 * 24);
    // All drawn points lie near the stroke (y = 1 - 80/400 = 0.8 in world units).
    for (let j = 0; j < drawn.y.length / 2; j++) expect(Math.abs(drawn.y[2 * j + 1]! - 0.8)).toBeLessThan(0.1);
    const losses = await page.evaluate(async () => [
      await window.lazytensorDemo.flowStep(),
      await window.lazytensorDemo.flowStep(),
      await window.lazytensorDemo.flowStep(),
    ]);
    expect(losses[2]!).toBeLessThan(losses[0]!);
    const moved = await flowState(page);
    expect(meanNearest(moved.x, moved.y)).toBeLessThan(meanNearest(drawn.x, drawn.y));
    await page.close();
    expect(errors).toEqual([]);
  });
});
