// `npm run demo`: builds dist/ when it is missing or older than the sources, quietly (one status
// line; the build's own output only if it fails), then runs examples/demo.mjs with the arguments
// given (`npm run demo -- --quick`). `npm run build && node examples/demo.mjs` printed the whole
// build log (tsc, rollup) before the demo, and rebuilt for a minute even when nothing had changed.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** What the build reads: a newer file than dist/index.js means dist/ is stale. */
const BUILD_INPUTS = [
  'src',
  'assembly',
  'package.json',
  'rollup.config.mjs',
  'tsconfig.build.json',
  'asconfig.json',
  'scripts/build-wasm.mjs',
  'scripts/worker-plugin.mjs',
];
/** The outputs the demo imports. */
const BUILD_OUTPUTS = ['dist/index.js', 'dist/geomloss.js'];

/** The newest modification time (ms) of a file, or of the files under a folder; 0 if absent. */
function newest(file) {
  let stat;
  try {
    stat = statSync(file);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = 0;
  for (const entry of readdirSync(file)) latest = Math.max(latest, newest(path.join(file, entry)));
  return latest;
}

/** Whether dist/ under `dir` must be built: an output missing, or older than some build input. */
export function distIsStale(dir = root) {
  const outputs = BUILD_OUTPUTS.map((f) => newest(path.join(dir, f)));
  if (outputs.some((t) => t === 0)) return true;
  const inputs = Math.max(...BUILD_INPUTS.map((f) => newest(path.join(dir, f))));
  return inputs > Math.min(...outputs);
}

/** Runs `npm run build` with its output captured: shown (on stderr) only if the build fails. */
function build() {
  return new Promise((resolve) => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const child = spawn(npm, ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = [];
    child.stdout.on('data', (chunk) => log.push(chunk));
    child.stderr.on('data', (chunk) => log.push(chunk));
    child.on('error', (error) => resolve({ code: 1, log: String(error) }));
    child.on('close', (code) => resolve({ code, log: Buffer.concat(log).toString() }));
  });
}

async function main() {
  if (distIsStale()) {
    const t0 = performance.now();
    process.stdout.write('building dist/ (npm run build: the sources are newer, or it is missing) ...\n');
    const { code, log } = await build();
    if (code !== 0) {
      process.stderr.write(log);
      process.stderr.write(`npm run build failed (exit code ${code})\n`);
      process.exit(1);
    }
    process.stdout.write(`built in ${((performance.now() - t0) / 1000).toFixed(0)} s\n\n`);
  }
  const demo = spawn(process.execPath, [path.join(root, 'examples/demo.mjs'), ...process.argv.slice(2)], {
    cwd: root,
    stdio: 'inherit',
  });
  demo.on('close', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
