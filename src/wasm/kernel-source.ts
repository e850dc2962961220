// Where the WebAssembly kernel comes from, in order:
// 1. a WebAssembly.Module the user handed over (useWasmModule): what `import kernel from
//    'lazytensor/kernel.wasm'` gives in edge runtimes, which refuse to compile Wasm from bytes;
// 2. the module the build imported (the `workerd` export condition's entry, dist/edge/: its code says
//    `import kernel from '../kernel.wasm'`, and the platform's bundler links the file as a module);
// 3. the base64 copy inlined in every other build, compiled at first use (no file, no fetch): the
//    relaxed-SIMD build (fused multiply-adds in the blocked tiles of assembly/blocked.ts) where the
//    runtime validates a relaxed-SIMD probe (Node >= 22, Chrome >= 114), else the standard-SIMD one
//    (Node 20 rejects relaxed-SIMD opcodes: the whole module would fail to compile).
import { InputError } from '../core/errors.js';
import { KERNEL_RELAXED_WASM_BASE64, KERNEL_WASM_BASE64, KERNEL_WASM_MODULE } from './wasm-binary.generated.js';

// (module (func (result v128) (f32x4.relaxed_madd (v128.const 0) (v128.const 0) (v128.const 0))))
const V128_ZERO = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
const RELAXED_PROBE = [
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00,
  0x01,
  0x05,
  0x01,
  0x60,
  0x00,
  0x01,
  0x7b,
  0x03,
  0x02,
  0x01,
  0x00,
  0x0a,
  0x3d,
  0x01,
  0x3b,
  0x00,
  ...V128_ZERO,
  ...V128_ZERO,
  ...V128_ZERO,
  0xfd,
  0x85,
  0x02,
  0x0b,
];

let relaxed: boolean | null = null;
/** Whether this runtime accepts relaxed-SIMD instructions (checked once, by validating a probe). */
export function relaxedSimdSupported(): boolean {
  if (relaxed === null) {
    try {
      relaxed = typeof WebAssembly === 'object' && WebAssembly.validate(new Uint8Array(RELAXED_PROBE));
    } catch {
      relaxed = false;
    }
  }
  return relaxed;
}

/** The inlined kernel this runtime gets: the relaxed-SIMD build where supported and built. */
function inlineBase64(): string {
  return KERNEL_RELAXED_WASM_BASE64 !== '' && relaxedSimdSupported() ? KERNEL_RELAXED_WASM_BASE64 : KERNEL_WASM_BASE64;
}

/** Decodes base64 without Node's Buffer where atob exists (browsers, edge runtimes, Node >= 16). */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  if (typeof atob === 'function') {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let k = 0; k < binary.length; k++) bytes[k] = binary.charCodeAt(k);
    return bytes;
  }
  // Very old Node without atob.
  const { Buffer } = globalThis as unknown as { Buffer: { from(s: string, e: string): Uint8Array } };
  return new Uint8Array(Buffer.from(text, 'base64'));
}

let userModule: WebAssembly.Module | null = null;
let compiled: Promise<WebAssembly.Module> | null = null;
/** Bumped whenever the source changes, so that caches built on an older module are dropped. */
let generation = 0;

/** How the current kernel module was obtained. */
export type KernelSource = 'user-module' | 'bundled-module' | 'inline';

export function kernelSource(): KernelSource {
  return userModule !== null ? 'user-module' : KERNEL_WASM_MODULE !== null ? 'bundled-module' : 'inline';
}

export function kernelGeneration(): number {
  return generation;
}

function isWasmModule(value: unknown): value is WebAssembly.Module {
  const W = (globalThis as { WebAssembly?: { Module?: unknown } }).WebAssembly;
  if (typeof W?.Module === 'function' && value instanceof (W.Module as new () => object)) return true;
  // A module from another realm (an iframe, a vm context) fails instanceof but is still one.
  return Object.prototype.toString.call(value) === '[object WebAssembly.Module]';
}

/** Sets the module to instantiate (see useWasmModule in wasm-loader.ts, which also drops the
 *  instances built from the previous one). */
export function setUserModule(module: WebAssembly.Module | null): void {
  if (module !== null && !isWasmModule(module)) {
    const what = module === undefined ? 'undefined' : Object.prototype.toString.call(module);
    throw new InputError(
      `useWasmModule: module must be a WebAssembly.Module (in an edge runtime: the default import of lazytensor/kernel.wasm), got ${what}`,
    );
  }
  userModule = module;
  generation++;
}

/** The compiled kernel module. */
export function kernelModule(): Promise<WebAssembly.Module> {
  if (userModule !== null) return Promise.resolve(userModule);
  if (KERNEL_WASM_MODULE !== null) return Promise.resolve(KERNEL_WASM_MODULE);
  if (compiled === null) {
    const current = (async () => {
      if (typeof WebAssembly === 'undefined') throw new Error('lazytensor: this runtime has no WebAssembly support');
      try {
        return await WebAssembly.compile(decodeBase64(inlineBase64()));
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(
          `lazytensor: this runtime refused to compile the WebAssembly kernel (${message}). ` +
            `Pages need the CSP directive script-src 'wasm-unsafe-eval'; edge runtimes that forbid compiling Wasm ` +
            `from bytes need the module: pass the default import of lazytensor/kernel.wasm to useWasmModule()`,
          { cause: error },
        );
      }
    })();
    compiled = current;
    current.catch(() => {
      if (compiled === current) compiled = null; // let a later call retry
    });
  }
  return compiled;
}

/** What a worker gets to instantiate its own kernel: the bytes where they are inlined (each worker
 *  compiles them; every runtime can post bytes), else the module (structured-cloneable). */
export async function workerKernelPayload(): Promise<
  { wasm: Uint8Array<ArrayBuffer> } | { module: WebAssembly.Module }
> {
  if (userModule === null && KERNEL_WASM_MODULE === null) return { wasm: decodeBase64(inlineBase64()) };
  return { module: await kernelModule() };
}

/** Forgets the compiled copy of the inlined bytes (releaseWasm). */
export function dropCompiledModule(): void {
  compiled = null;
}
