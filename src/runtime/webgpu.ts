// Acquiring a WebGPU device: from navigator.gpu in browsers (and Deno), from the optional `webgpu`
// package (Dawn) in Node. Every failure resolves to a reason string, never to a rejection.
import { detectFeatures } from './features.js';

/** The part of GPU (navigator.gpu) the engine uses. */
export interface GpuLike {
  requestAdapter(options?: GPURequestAdapterOptions): Promise<GPUAdapter | null>;
}

/** Where GPU objects come from (tests inject their own): a GPU, or a string saying why there is none. */
export type GpuProvider = () => Promise<GpuLike | string | null>;

export interface AdapterDescription {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  readonly isFallbackAdapter: boolean;
}

export interface AcquiredDevice {
  readonly device: GPUDevice;
  readonly adapter: AdapterDescription;
  readonly timestampQuery: boolean;
}

export type Acquisition =
  { readonly ok: true; readonly value: AcquiredDevice } | { readonly ok: false; readonly reason: string };

/** Dawn's GPU object must outlive every device it created (if it is garbage collected while a
 *  device lives, the process crashes): it is kept here for the process lifetime. */
const KEEP_ALIVE = Symbol.for('lazytensor.webgpu');

/** The module name is a variable so that bundlers targeting browsers do not try to resolve it. */
const NODE_MODULE = 'webgpu';

interface DawnModule {
  create(flags: string[]): GpuLike;
}

let dawn: Promise<GpuLike | string> | null = null;

const hiddenImport = (specifier: string): Promise<unknown> =>
  import(/* @vite-ignore */ /* webpackIgnore: true */ specifier);

/** On Linux, Dawn finds GPUs through Vulkan drivers (ICD manifests). With none, creating Dawn prints
 *  `vkCreateInstance: Found no drivers!` to stderr and finds no adapter anyway, so it is not created:
 *  the library stays silent on GPU-less machines. Looks where the Vulkan loader looks: the
 *  VK_ICD_FILENAMES / VK_DRIVER_FILES / VK_ADD_DRIVER_FILES variables, then the icd.d folders of the
 *  XDG data and config dirs, /etc, /usr/share, /usr/local/share and ~/.local/share. Returns null when
 *  a driver is plausibly there (or on other systems: Metal and D3D12 need none), else a reason. */
async function missingVulkanDriver(): Promise<string | null> {
  const proc = (globalThis as { process?: { platform?: string; env?: Record<string, string | undefined> } }).process;
  if (proc?.platform !== 'linux') return null;
  const env = proc.env ?? {};
  if (env['VK_ICD_FILENAMES'] || env['VK_DRIVER_FILES'] || env['VK_ADD_DRIVER_FILES']) return null;
  try {
    const nodeFs = (await hiddenImport('node:fs')) as { readdirSync(path: string): string[] };
    const roots = [
      ...(env['XDG_CONFIG_DIRS'] ?? '/etc/xdg').split(':'),
      '/etc',
      ...(env['XDG_DATA_DIRS'] ?? '/usr/local/share:/usr/share').split(':'),
      '/usr/local/share',
      '/usr/share',
    ];
    if (env['HOME']) roots.push(`${env['HOME']}/.local/share`);
    if (env['XDG_DATA_HOME']) roots.push(env['XDG_DATA_HOME']);
    for (const root of roots) {
      if (!root) continue;
      try {
        if (nodeFs.readdirSync(`${root}/vulkan/icd.d`).some((f) => f.endsWith('.json'))) return null;
      } catch {
        // no such folder
      }
    }
  } catch {
    return null; // cannot look: let Dawn decide
  }
  return 'no Vulkan driver is installed (no ICD manifest in the vulkan/icd.d folders, no VK_ICD_FILENAMES): Dawn would find no adapter';
}

/** navigator.gpu, or Dawn's GPU object in Node; a string says why there is none. `scope` (default
 *  globalThis) is injectable for tests of the browser paths. */
export function defaultGpu(scope: object = globalThis): Promise<GpuLike | string> {
  const features = detectFeatures(scope);
  if (features.navigatorGpu) return Promise.resolve((scope as { navigator: { gpu: GpuLike } }).navigator.gpu);
  if (!features.node) {
    return Promise.resolve('navigator.gpu is absent (this browser has no WebGPU, or it is disabled)');
  }
  dawn ??= (async (): Promise<GpuLike | string> => {
    const holder = globalThis as unknown as Record<symbol, GpuLike | undefined>;
    const kept = holder[KEEP_ALIVE];
    if (kept !== undefined) return kept;
    const noDriver = await missingVulkanDriver();
    if (noDriver !== null) return noDriver;
    let mod: DawnModule;
    try {
      mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_MODULE)) as DawnModule;
    } catch {
      return `the optional 'webgpu' package is not installed (npm install webgpu)`;
    }
    try {
      const gpu = mod.create([]);
      holder[KEEP_ALIVE] = gpu;
      return gpu;
    } catch (error) {
      return `the 'webgpu' package did not start: ${error instanceof Error ? error.message : String(error)}`;
    }
  })();
  return dawn;
}

/** The limits the engine asks for: the adapter's maximum of each (the defaults are much lower). */
const LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

function describe(adapter: GPUAdapter): AdapterDescription {
  const info = (adapter as { info?: GPUAdapterInfo }).info;
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter:
      (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ??
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      false,
  };
}

/** Requests an adapter and a device. Never rejects. */
export async function acquireDevice(provider: GpuProvider | null): Promise<Acquisition> {
  try {
    let gpu: GpuLike | string | null;
    try {
      gpu = provider !== null ? await provider() : await defaultGpu();
    } catch (error) {
      gpu = `no WebGPU implementation: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (gpu === null) return { ok: false, reason: 'no WebGPU implementation' };
    if (typeof gpu === 'string') return { ok: false, reason: gpu };
    // Chromium logs the warning "No available adapters." whenever this resolves to null, and nothing
    // tells beforehand: without --enable-unsafe-webgpu on Linux (Chromium 156, headless) navigator.gpu
    // exists, has wgslLanguageFeatures and getPreferredCanvasFormat(), and every request (default,
    // low-power, forceFallbackAdapter, featureLevel 'compatibility') resolves to null with that warning.
    // So it is only kept to once per page: 'auto' asks only for plans of autoMinPairs pairs or more,
    // and the answer is cached (getGpu in index.ts).
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter === null || adapter === undefined) {
      return {
        ok: false,
        reason:
          'no WebGPU adapter (no GPU driver; in Node, Dawn needs a Vulkan, Metal or D3D12 driver: on a GPU-less Linux machine set VK_ICD_FILENAMES to a CPU Vulkan driver such as SwiftShader or lavapipe)',
      };
    }
    const description = describe(adapter);
    // Dawn's null backend computes nothing (zeros): never accept it.
    if (description.device === 'null-backend' || /null.?backend/i.test(description.description)) {
      return { ok: false, reason: `the WebGPU adapter is Dawn's null backend, which computes nothing` };
    }
    const requiredLimits: Record<string, number> = {};
    for (const key of LIMITS) {
      const value = (adapter.limits as unknown as Record<string, number | undefined>)[key];
      if (typeof value === 'number') requiredLimits[key] = value;
    }
    const timestampQuery = adapter.features.has('timestamp-query');
    const device = await adapter.requestDevice({
      requiredLimits,
      requiredFeatures: timestampQuery ? ['timestamp-query'] : [],
      label: 'lazytensor',
    });
    return { ok: true, value: { device, adapter: description, timestampQuery } };
  } catch (error) {
    return {
      ok: false,
      reason: `the WebGPU adapter or device request failed: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}
