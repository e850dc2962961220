// The API reference (`npm run docs`, TypeDoc, typedoc.json) documents every export: this runs TypeDoc
// without writing anything and fails on each exported symbol, member or property that has no doc
// comment (TypeDoc's validation.notDocumented), naming it. Other TypeDoc warnings (a broken
// {@link}, say) are shown but do not fail here.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const typedoc = fileURLToPath(new URL('../node_modules/typedoc/bin/typedoc', import.meta.url));

describe('the API reference', () => {
  it('covers every entry point of the package', () => {
    // Every types file the exports map names (under any condition: import, require, workerd) is the
    // bundle of one source entry: dist/index.d.ts and dist/cjs/index.d.cts come from src/index.ts,
    // dist/X.d.ts from src/X/index.ts. Each such entry must be a TypeDoc entry point.
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const config = JSON.parse(readFileSync(join(root, 'typedoc.json'), 'utf8')) as { entryPoints: string[] };
    const typesFiles = new Set<string>();
    const collect = (entry: unknown): void => {
      if (entry === null || typeof entry !== 'object') return;
      for (const [key, value] of Object.entries(entry)) {
        if (key === 'types' && typeof value === 'string') typesFiles.add(value);
        else collect(value);
      }
    };
    collect(pkg.exports);
    const wanted = [...typesFiles].map((t) => {
      const name = t.replace(/^\.\/dist\/(cjs\/)?/, '').replace(/\.d\.c?ts$/, '');
      return name === 'index' ? 'src/index.ts' : `src/${name}/index.ts`;
    });
    expect(wanted.length).toBeGreaterThan(0);
    expect(config.entryPoints).toEqual(expect.arrayContaining([...new Set(wanted)]));
  });

  it('has a doc comment on every exported symbol', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lazytensor-docs-'));
    const json = join(dir, 'api.json');
    const run = spawnSync(
      process.execPath,
      [typedoc, '--out', join(dir, 'html'), '--json', json, '--logLevel', 'Warn'],
      {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
        timeout: 110_000,
      },
    );
    // eslint-disable-next-line no-control-regex
    const output = `${run.stdout}\n${run.stderr}`.replace(/\u001b\[[0-9;]*m/g, '');
    const undocumented = output.split('\n').filter((line) => line.includes('does not have any documentation'));
    expect(undocumented, 'exported symbols without a doc comment').toEqual([]);
    expect(run.status, output).toBe(0);
    // It did document the package: both entry points, with their main exports.
    const project = JSON.parse(readFileSync(json, 'utf8')) as {
      children: { name: string; children?: { name: string }[] }[];
    };
    rmSync(dir, { recursive: true, force: true });
    const names = (module: string) =>
      project.children.find((c) => c.name === module)?.children?.map((c) => c.name) ?? [];
    expect(names('index')).toEqual(
      expect.arrayContaining(['Vi', 'Vj', 'Pm', 'LazyTensor', 'Tensor', 'vjp', 'solveVjp']),
    );
    expect(names('geomloss')).toEqual(expect.arrayContaining(['SamplesLoss', 'SamplesLossOptions', 'GeomLossError']));
  });
});
