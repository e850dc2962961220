// The web demo (npm run demo:web): a Wasserstein gradient flow and K-means, on the built package.
// Plain JavaScript, no bundler: served next to dist/ by any static file server. The page exposes
// window.lazytensorDemo for the headless-browser test (tests/demo/web-demo.test.ts).
import { Vi, Vj, getWasmThreads, setDefaultEngine } from '../../dist/index.js';
import { SamplesLoss } from '../../dist/geomloss.js';

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------------
// Random point clouds, in world coordinates [0, 1.3] x [0, 1] (the canvas aspect), y pointing up.

const WIDTH = 1.3;

function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s >>> 8) / 16777216;
  };
}

function gaussianPair(rnd) {
  const r = Math.sqrt(-2 * Math.log(1 - rnd()));
  const t = 2 * Math.PI * rnd();
  return [r * Math.cos(t), r * Math.sin(t)];
}

/** n points drawn by `sample(rnd) -> [x, y] | null` (null: rejected), as a Float32Array [n, 2]. */
function cloud(n, seed, sample) {
  const rnd = lcg(seed);
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n;) {
    const p = sample(rnd);
    if (p === null) continue;
    out[2 * i] = p[0];
    out[2 * i + 1] = p[1];
    i++;
  }
  return out;
}

const SHAPES = {
  moons: (rnd) => {
    const t = Math.PI * rnd();
    const [gx, gy] = gaussianPair(rnd);
    const upper = rnd() < 0.5;
    const x = upper ? Math.cos(t) : 1 - Math.cos(t);
    const y = upper ? Math.sin(t) : 0.5 - Math.sin(t);
    return [0.2 + 0.3 * x + 0.02 * gx, 0.42 + 0.3 * y + 0.02 * gy];
  },
  ring: (rnd) => {
    const t = 2 * Math.PI * rnd();
    const r = 0.3 + 0.05 * (rnd() - 0.5);
    return [0.65 + r * Math.cos(t), 0.5 + r * Math.sin(t)];
  },
  blob: (rnd) => {
    const [gx, gy] = gaussianPair(rnd);
    return [0.3 + 0.08 * gx, 0.5 + 0.08 * gy];
  },
  crescent: (rnd) => {
    const t = -0.45 * Math.PI + 0.9 * Math.PI * rnd();
    const r = 0.32 + 0.06 * (rnd() - 0.5) * Math.cos(t) * 2;
    return [0.6 + r * Math.cos(t), 0.5 + r * Math.sin(t)];
  },
  square: (rnd) => [0.12 + 0.4 * rnd(), 0.3 + 0.4 * rnd()],
  heart: (rnd) => {
    const x = 2.6 * rnd() - 1.3;
    const y = 2.6 * rnd() - 1.2;
    const f = (x * x + y * y - 1) ** 3 - x * x * y ** 3;
    return f <= 0 ? [0.9 + 0.26 * x, 0.47 + 0.26 * y] : null;
  },
  spiral: (rnd) => {
    const t = 3 * Math.PI * Math.sqrt(rnd());
    const [gx, gy] = gaussianPair(rnd);
    return [0.4 + 0.035 * t * Math.cos(t) + 0.012 * gx, 0.5 + 0.035 * t * Math.sin(t) + 0.012 * gy];
  },
  twoBlobs: (rnd) => {
    const [gx, gy] = gaussianPair(rnd);
    return rnd() < 0.5 ? [0.85 + 0.05 * gx, 0.75 + 0.05 * gy] : [1.05 + 0.05 * gx, 0.25 + 0.05 * gy];
  },
};

const PRESETS = {
  moons: ['moons', 'ring'],
  blob: ['blob', 'crescent'],
  square: ['square', 'heart'],
  spiral: ['spiral', 'twoBlobs'],
};

// ---------------------------------------------------------------------------------------------------
// Engines.

const info = { engine: 'wasm', threads: 1, webgpu: null, webgpuNote: 'not available in this browser' };

async function detectEngines() {
  info.threads = await getWasmThreads();
  if (!navigator.gpu) return;
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) {
      info.webgpuNote = 'no adapter';
      return;
    }
    const a = adapter.info ?? {};
    const fallback =
      adapter.isFallbackAdapter === true ||
      a.isFallbackAdapter === true ||
      /swiftshader|llvmpipe|lavapipe|warp/i.test(`${a.vendor} ${a.architecture} ${a.description}`);
    info.webgpu = { name: [a.vendor, a.architecture].filter(Boolean).join(' ') || 'adapter', fallback };
    info.webgpuNote = fallback ? `${info.webgpu.name}: a CPU emulation, slower than WebAssembly` : info.webgpu.name;
  } catch (error) {
    info.webgpuNote = `requestAdapter failed: ${error.message}`;
  }
}

function setEngine(engine) {
  if (engine === 'webgpu' && info.webgpu === null) throw new Error('WebGPU is not available in this browser');
  info.engine = engine;
  setDefaultEngine(engine);
  $('engine').value = engine;
  renderStatus();
}

function renderStatus() {
  const wasm = `WebAssembly: ${info.threads} thread${info.threads === 1 ? '' : 's'}`;
  $('status').textContent =
    `running on ${info.engine === 'webgpu' ? 'WebGPU' : 'WebAssembly'} · ${wasm} · WebGPU: ${info.webgpuNote}`;
}

// ---------------------------------------------------------------------------------------------------
// Canvas helpers.

function view(canvas) {
  const scale = canvas.height;
  return {
    toPx: (x, y) => [x * scale, canvas.height - y * scale],
    toWorld: (px, py) => [px / scale, (canvas.height - py) / scale],
  };
}

function drawPoints(ctx, v, pts, color, size) {
  ctx.fillStyle = color;
  for (let i = 0; i < pts.length / 2; i++) {
    const [px, py] = v.toPx(pts[2 * i], pts[2 * i + 1]);
    ctx.fillRect(px - size / 2, py - size / 2, size, size);
  }
}

const ms = (t) => `${t.toFixed(1)} ms`;

// ---------------------------------------------------------------------------------------------------
// Panel 1: the gradient flow x <- x - lr * N * grad_x S(x, y). With uniform weights 1/N, N grad_x_i
// is x_i minus where the transport sends x_i, so each step moves every point a fraction lr of the way.

const flow = {
  x: new Float32Array(0),
  x0: new Float32Array(0),
  y: new Float32Array(0),
  losses: [],
  steps: 0,
  running: false,
  busy: null,
  drawn: { source: false, target: false },
  last: '',
};

const flowCanvas = $('flow-canvas');
const flowCtx = flowCanvas.getContext('2d');
const flowView = view(flowCanvas);

function flowPreset() {
  const [from, to] = PRESETS[$('flow-preset').value];
  const n = Number($('flow-n').value);
  flow.x0 = cloud(n, 1, SHAPES[from]);
  flow.y = cloud(n, 2, SHAPES[to]);
  flow.drawn = { source: false, target: false };
  flowReset();
}

function flowReset() {
  flow.x = Float32Array.from(flow.x0);
  flow.losses = [];
  flow.steps = 0;
  flow.last = '';
  drawFlow();
}

function drawFlow() {
  flowCtx.clearRect(0, 0, flowCanvas.width, flowCanvas.height);
  flowCtx.globalAlpha = 0.55;
  drawPoints(flowCtx, flowView, flow.y, '#d9412b', 2.2);
  flowCtx.globalAlpha = 0.75;
  drawPoints(flowCtx, flowView, flow.x, '#2f6fdb', 2.2);
  flowCtx.globalAlpha = 1;
  drawLoss();
  $('flow-timing').textContent =
    `${flow.x.length / 2} source points, ${flow.y.length / 2} target points${flow.last ? `\n${flow.last}` : ''}`;
}

function drawLoss() {
  const canvas = $('flow-loss');
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = '#5b6475';
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillText('loss (log scale) per step', 8, 13);
  const values = flow.losses.map((v) => Math.log10(Math.max(v, 1e-9)));
  if (values.length === 0) return;
  const hi = Math.ceil(Math.max(...values));
  const lo = Math.min(hi - 1, Math.floor(Math.min(...values)));
  const left = 40;
  const span = Math.max(values.length - 1, 20);
  const X = (k) => left + ((width - left - 8) * k) / span;
  const Y = (v) => 20 + ((height - 30) * (hi - v)) / (hi - lo);
  ctx.strokeStyle = '#e3e6eb';
  for (let e = lo; e <= hi; e++) {
    ctx.beginPath();
    ctx.moveTo(left, Y(e));
    ctx.lineTo(width - 8, Y(e));
    ctx.stroke();
    ctx.fillText(`1e${e}`, 4, Y(e) + 4);
  }
  ctx.strokeStyle = '#1d2330';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  values.forEach((v, k) => (k === 0 ? ctx.moveTo(X(k), Y(v)) : ctx.lineTo(X(k), Y(v))));
  ctx.stroke();
  ctx.lineWidth = 1;
}

/** One gradient step; resolves to the loss before the step. */
async function flowStep() {
  // One step at a time: a click during a step waits for it.
  while (flow.busy) await flow.busy;
  const run = (async () => {
    const n = flow.x.length / 2;
    const m = flow.y.length / 2;
    if (n === 0 || m === 0) {
      flow.last = 'draw some source and target points first';
      drawFlow();
      return NaN;
    }
    const blur = Number($('flow-blur').value);
    const lr = Number($('flow-lr').value);
    const loss = new SamplesLoss({ loss: 'sinkhorn', p: 2, blur, scaling: 0.5 });
    const t0 = performance.now();
    const {
      value,
      grad,
      info: run,
    } = await loss.valueAndGrad({ data: flow.x, shape: [n, 2] }, { data: flow.y, shape: [m, 2] });
    const t1 = performance.now();
    const g = grad.x.data;
    for (let k = 0; k < 2 * n; k++) flow.x[k] -= lr * n * g[k];
    flow.losses.push(value);
    flow.steps++;
    const t2 = performance.now();
    flow.last = `step ${flow.steps}: loss ${value.toExponential(3)} · valueAndGrad ${ms(t1 - t0)} on ${run.engine} (${run.backend}, ${run.reductions} reductions of ${n} x ${m}) · update ${ms(t2 - t1)}`;
    drawFlow();
    flow.last += ` · draw ${ms(performance.now() - t2)}`;
    $('flow-timing').textContent = `${n} source points, ${m} target points\n${flow.last}`;
    return value;
  })();
  flow.busy = run;
  try {
    return await run;
  } finally {
    flow.busy = null;
  }
}

async function flowRun() {
  flow.running = !flow.running;
  $('flow-run').textContent = flow.running ? 'Pause' : 'Run';
  while (flow.running) {
    try {
      await flowStep();
    } catch (error) {
      flow.running = false;
      $('flow-run').textContent = 'Run';
      fail('flow-timing', error);
      return;
    }
    if (flow.steps >= 300) flow.running = false;
    await new Promise(requestAnimationFrame);
  }
  $('flow-run').textContent = 'Run';
}

// Drawing: a stroke sprays points around the pointer into the selected cloud; the first stroke into a
// preset cloud replaces it.
let stroke = null;
flowCanvas.addEventListener('pointerdown', (event) => {
  const which = $('flow-draw').value;
  if (!flow.drawn[which]) {
    flow.drawn[which] = true;
    if (which === 'source') flow.x0 = new Float32Array(0);
    else flow.y = new Float32Array(0);
    flowReset();
  }
  stroke = { which, rnd: lcg(Math.floor(event.timeStamp * 1000)) };
  flowCanvas.setPointerCapture(event.pointerId);
  spray(event);
});
flowCanvas.addEventListener('pointermove', (event) => stroke && spray(event));
flowCanvas.addEventListener('pointerup', () => {
  stroke = null;
});

function spray(event) {
  const rect = flowCanvas.getBoundingClientRect();
  const [cx, cy] = flowView.toWorld(
    ((event.clientX - rect.left) * flowCanvas.width) / rect.width,
    ((event.clientY - rect.top) * flowCanvas.height) / rect.height,
  );
  const add = new Float32Array(2 * 24);
  for (let k = 0; k < 24; k++) {
    const [gx, gy] = gaussianPair(stroke.rnd);
    add[2 * k] = Math.min(WIDTH, Math.max(0, cx + 0.015 * gx));
    add[2 * k + 1] = Math.min(1, Math.max(0, cy + 0.015 * gy));
  }
  const join = (a) => {
    const c = new Float32Array(a.length + add.length);
    c.set(a);
    c.set(add, a.length);
    return c;
  };
  if (stroke.which === 'source') {
    flow.x0 = join(flow.x0);
    flow.x = join(flow.x);
  } else {
    flow.y = join(flow.y);
  }
  drawFlow();
}

// ---------------------------------------------------------------------------------------------------
// Panel 2: K-means by Lloyd iterations. Assignment: argMin over j of |x_i - c_j|^2 (one reduction);
// update: each centroid becomes the mean of its points (a scatter-add in plain JavaScript).

const PALETTE = Array.from({ length: 32 }, (_, k) => {
  const hue = (k * 137.508) % 360;
  return hslToRgb(hue / 360, 0.62, k % 2 ? 0.42 : 0.55);
});

function hslToRgb(h, s, l) {
  const f = (n) => {
    const k = (n + h * 12) % 12;
    return Math.round(255 * (l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

const km = {
  x: new Float32Array(0),
  c: new Float32Array(0),
  labels: new Int32Array(0),
  iteration: 0,
  changed: -1,
  running: false,
  busy: null,
  last: '',
};
const kmCanvas = $('km-canvas');
const kmCtx = kmCanvas.getContext('2d');
const kmView = view(kmCanvas);

let kmSeed = 7;

function kmData() {
  const n = Number($('km-n').value);
  // Deterministic: the page shows the same data on every load (the test relies on it).
  const rnd = lcg(kmSeed++);
  // A mixture of 12 anisotropic Gaussian blobs.
  const blobs = Array.from({ length: 12 }, () => ({
    x: 0.12 + (WIDTH - 0.24) * rnd(),
    y: 0.12 + 0.76 * rnd(),
    a: 0.02 + 0.06 * rnd(),
    b: 0.02 + 0.05 * rnd(),
    t: Math.PI * rnd(),
  }));
  km.x = cloud(n, Math.floor(rnd() * 1e9), (r) => {
    const blob = blobs[Math.floor(r() * blobs.length)];
    const [gx, gy] = gaussianPair(r);
    const u = blob.a * gx;
    const v = blob.b * gy;
    const px = blob.x + u * Math.cos(blob.t) - v * Math.sin(blob.t);
    const py = blob.y + u * Math.sin(blob.t) + v * Math.cos(blob.t);
    return px > 0 && px < WIDTH && py > 0 && py < 1 ? [px, py] : null;
  });
  kmReset();
}

function kmReset() {
  const K = Number($('km-k').value);
  const n = km.x.length / 2;
  // k-means++ initialisation (each new centroid drawn with probability proportional to the squared
  // distance to the nearest one so far), seeded so that the page is reproducible.
  const rnd = lcg(K * 7919 + n);
  const d2 = new Float64Array(n).fill(Infinity);
  km.c = new Float32Array(2 * K);
  let pick = Math.floor(rnd() * n);
  for (let k = 0; k < K; k++) {
    km.c[2 * k] = km.x[2 * pick];
    km.c[2 * k + 1] = km.x[2 * pick + 1];
    let total = 0;
    for (let i = 0; i < n; i++) {
      const d = (km.x[2 * i] - km.c[2 * k]) ** 2 + (km.x[2 * i + 1] - km.c[2 * k + 1]) ** 2;
      if (d < d2[i]) d2[i] = d;
      total += d2[i];
    }
    let u = rnd() * total;
    for (pick = 0; pick < n - 1 && (u -= d2[pick]) > 0; pick++);
  }
  km.labels = new Int32Array(n).fill(-1);
  km.iteration = 0;
  km.changed = -1;
  km.last = '';
  drawKm();
}

function drawKm() {
  const { width, height } = kmCanvas;
  const image = kmCtx.createImageData(width, height);
  const px = image.data;
  for (let p = 0; p < px.length; p += 4) {
    px[p] = 252;
    px[p + 1] = 252;
    px[p + 2] = 253;
    px[p + 3] = 255;
  }
  const n = km.x.length / 2;
  for (let i = 0; i < n; i++) {
    const [X, Y] = kmView.toPx(km.x[2 * i], km.x[2 * i + 1]);
    const col = km.labels[i] < 0 ? [150, 155, 165] : PALETTE[km.labels[i] % PALETTE.length];
    const q = 4 * (Math.floor(Y) * width + Math.floor(X));
    if (q < 0 || q >= px.length) continue;
    px[q] = col[0];
    px[q + 1] = col[1];
    px[q + 2] = col[2];
  }
  kmCtx.putImageData(image, 0, 0);
  for (let k = 0; k < km.c.length / 2; k++) {
    const [X, Y] = kmView.toPx(km.c[2 * k], km.c[2 * k + 1]);
    kmCtx.beginPath();
    kmCtx.arc(X, Y, 5, 0, 2 * Math.PI);
    kmCtx.fillStyle = '#fff';
    kmCtx.fill();
    kmCtx.lineWidth = 2;
    kmCtx.strokeStyle = '#1d2330';
    kmCtx.stroke();
  }
  $('km-timing').textContent = `${n} points, K = ${km.c.length / 2}${km.last ? `\n${km.last}` : ''}`;
}

/** One Lloyd iteration; resolves to the number of points that changed cluster. */
async function kmStep() {
  while (km.busy) await km.busy;
  const run = (async () => {
    const n = km.x.length / 2;
    const K = km.c.length / 2;
    const t0 = performance.now();
    const nearest = await Vi(km.x, 2).sqDist(Vj(km.c, 2)).argMin(1);
    const t1 = performance.now();
    const labels = nearest.data;
    let changed = 0;
    for (let i = 0; i < n; i++) if (labels[i] !== km.labels[i]) changed++;
    km.labels = Int32Array.from(labels);
    const sums = new Float64Array(2 * K);
    const counts = new Float64Array(K);
    for (let i = 0; i < n; i++) {
      const l = labels[i];
      sums[2 * l] += km.x[2 * i];
      sums[2 * l + 1] += km.x[2 * i + 1];
      counts[l]++;
    }
    // An empty cluster keeps its centroid.
    for (let k = 0; k < K; k++) {
      if (counts[k] > 0) {
        km.c[2 * k] = sums[2 * k] / counts[k];
        km.c[2 * k + 1] = sums[2 * k + 1] / counts[k];
      }
    }
    km.iteration++;
    km.changed = changed;
    const t2 = performance.now();
    km.last = `iteration ${km.iteration}: argMin ${ms(t1 - t0)} on ${nearest.engine} (${n} x ${K}) · centroid update ${ms(t2 - t1)} · ${changed} points changed cluster`;
    drawKm();
    km.last += ` · draw ${ms(performance.now() - t2)}`;
    $('km-timing').textContent = `${n} points, K = ${K}\n${km.last}${changed === 0 ? ' · converged' : ''}`;
    return changed;
  })();
  km.busy = run;
  try {
    return await run;
  } finally {
    km.busy = null;
  }
}

async function kmRun() {
  km.running = !km.running;
  $('km-run').textContent = km.running ? 'Pause' : 'Run';
  while (km.running) {
    let changed;
    try {
      changed = await kmStep();
    } catch (error) {
      km.running = false;
      fail('km-timing', error);
      break;
    }
    if (changed === 0 || km.iteration >= 200) km.running = false;
    await new Promise((r) => setTimeout(r, 120));
  }
  $('km-run').textContent = 'Run';
}

// ---------------------------------------------------------------------------------------------------

function fail(where, error) {
  console.error(error);
  $(where).textContent = `error: ${error instanceof Error ? error.message : String(error)}`;
}

const ready = (async () => {
  await detectEngines();
  const option = $('engine').querySelector('option[value="webgpu"]');
  if (info.webgpu === null) {
    option.disabled = true;
    option.textContent = 'WebGPU (not available)';
  } else if (info.webgpu.fallback) {
    option.textContent = 'WebGPU (CPU emulation)';
  }
  // WebGPU when the browser has a real GPU adapter; a CPU-emulated one is slower than WebAssembly.
  setEngine(info.webgpu !== null && !info.webgpu.fallback ? 'webgpu' : 'wasm');
  $('engine').addEventListener('change', (e) => setEngine(e.target.value));
  $('flow-preset').addEventListener('change', flowPreset);
  $('flow-n').addEventListener('change', flowPreset);
  $('flow-run').addEventListener('click', flowRun);
  $('flow-step').addEventListener('click', () => flowStep().catch((e) => fail('flow-timing', e)));
  $('flow-reset').addEventListener('click', flowReset);
  $('flow-clear').addEventListener('click', () => {
    const which = $('flow-draw').value;
    flow.drawn[which] = true;
    if (which === 'source') flow.x0 = new Float32Array(0);
    else flow.y = new Float32Array(0);
    flowReset();
  });
  $('km-new').addEventListener('click', kmData);
  $('km-n').addEventListener('change', kmData);
  $('km-k').addEventListener('change', kmReset);
  $('km-run').addEventListener('click', kmRun);
  $('km-step').addEventListener('click', () => kmStep().catch((e) => fail('km-timing', e)));
  $('km-reset').addEventListener('click', kmReset);
  flowPreset();
  kmData();
})();

// For the headless-browser test and for the console.
window.lazytensorDemo = {
  ready,
  info,
  setEngine,
  flowStep,
  kmStep,
  // Copies: points as [n, 2] row-major Float32Arrays, labels as an Int32Array.
  flowState: () => ({
    x: Float32Array.from(flow.x),
    x0: Float32Array.from(flow.x0),
    y: Float32Array.from(flow.y),
    losses: [...flow.losses],
    steps: flow.steps,
  }),
  kmState: () => ({
    x: Float32Array.from(km.x),
    c: Float32Array.from(km.c),
    labels: Int32Array.from(km.labels),
    iteration: km.iteration,
    changed: km.changed,
  }),
};
