// Import-cycle and layering check over the TypeScript sources (run by `npm run lint`).
//
// Every relative import and re-export of every .ts file under the root (default src/) that survives
// compilation is an edge, dynamic `import('./x.js')` calls included: a cycle of those means a module
// can run before one it needs has been evaluated (a class still in its temporal dead zone, a binding
// still undefined). Type-only imports (`import type`, or every name marked `type`) are erased by the
// compiler and are left out: a record type and the node type it describes (op-def.ts, formula.ts)
// may name each other. `--types` includes them, to see those too. Bare specifiers (packages, node:,
// virtual: modules) are not part of the graph.
//
// Layering (paths relative to the root): src/core is the symbolic core and imports no engine, no
// runtime and no geomloss; the engines (src/wasm, src/gpu) import the core, never each other nor the
// runtime's selection (src/runtime/index.ts), so that an engine can be added, removed or tested alone.
//
// src/geomloss is a client of the package like any other: it imports the public surface
// (src/index.ts) and its own files only, never the core's, engines' or runtime's internals, so that
// everything it needs is exported, documented and kept stable for users building the same things.
//
// Usage: node scripts/check-cycles.mjs [--types] [root]   (exit 1 with the cycles and layer violations)
// The layer rules apply to type-only imports too: the core must not even name an engine's types.
// KNOWN lists imports of src/ that break a layer rule and are tolerated until their owner moves them
// (printed on every run); an entry that no longer occurs is a problem too, so the list only shrinks.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

/** Folder rules: files under `from` must not import files under any of `deny`, nor, when `only` is
 *  given, anything outside `only`. */
const LAYERS = [
  { from: 'core', deny: ['wasm', 'gpu', 'runtime', 'geomloss', 'index.ts', 'global.ts'] },
  { from: 'wasm', deny: ['gpu', 'runtime/index.ts', 'geomloss', 'index.ts', 'global.ts'] },
  { from: 'gpu', deny: ['wasm', 'runtime/index.ts', 'geomloss', 'index.ts', 'global.ts'] },
  { from: 'geomloss', deny: [], only: ['geomloss', 'index.ts'] },
];

/** Tolerated violations under src/: 'from imports to' -> what the owner should do. */
export const KNOWN = new Map([
  [
    'geomloss/hierarchy.ts imports core/kd-order.ts',
    "the slice-built tree top uses kdOrder's internal selection (selectRankIndexed): a public tree API would replace it",
  ],
  [
    'geomloss/hierarchy.ts imports core/scheduling.ts',
    'Slicer yields only when due (yieldIfDue, synchronous otherwise); the public checkpoint always awaits',
  ],
]);
const srcRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');

function listSources(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listSources(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out.sort();
}

/** The relative specifiers `file` imports or re-exports, with whether each is type-only. */
export function importsOf(file, text) {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found = [];
  const visit = (node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      found.push({ specifier: node.moduleSpecifier.text, typeOnly });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly =
        node.isTypeOnly ||
        (node.exportClause !== undefined &&
          ts.isNamedExports(node.exportClause) &&
          node.exportClause.elements.length > 0 &&
          node.exportClause.elements.every((e) => e.isTypeOnly));
      found.push({ specifier: node.moduleSpecifier.text, typeOnly });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length === 1 &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      found.push({ specifier: node.arguments[0].text, typeOnly: false });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter((f) => f.specifier.startsWith('.'));
}

/** './x.js' from `file` -> the .ts file it names (x.ts, or x/index.ts), or null outside the tree. */
function resolveSpecifier(file, specifier, known) {
  const base = resolve(dirname(file), specifier);
  const candidates = [base.replace(/\.(m?js)$/, '.ts'), `${base}.ts`, join(base, 'index.ts'), base];
  return candidates.find((c) => known.has(c)) ?? null;
}

/** The import graph of the .ts files under `root`: file -> [{ target, typeOnly }]. */
export function importGraph(root) {
  // Absolute paths: the targets are resolved to absolute paths, and a relative root (check('src'))
  // used to match none of them, so that the graph had no edges at all.
  const files = listSources(resolve(root));
  const known = new Set(files);
  const graph = new Map();
  for (const file of files) {
    const edges = [];
    for (const { specifier, typeOnly } of importsOf(file, readFileSync(file, 'utf8'))) {
      const target = resolveSpecifier(file, specifier, known);
      if (target !== null) edges.push({ target, typeOnly });
    }
    graph.set(file, edges);
  }
  return graph;
}

/** The graph without its type-only edges. */
export function runtimeGraph(graph) {
  return new Map([...graph].map(([file, edges]) => [file, edges.filter((e) => !e.typeOnly)]));
}

/** The strongly connected components that hold a cycle (Tarjan, iterative): the components of more
 *  than one file, or of one file that imports itself. */
export function findCycles(graph) {
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const components = [];
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work = [{ node: start, edge: 0 }];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const edges = graph.get(frame.node) ?? [];
      if (frame.edge < edges.length) {
        const next = edges[frame.edge++].target;
        if (!index.has(next)) {
          index.set(next, counter);
          low.set(next, counter++);
          stack.push(next);
          onStack.add(next);
          work.push({ node: next, edge: 0 });
        } else if (onStack.has(next)) {
          low.set(frame.node, Math.min(low.get(frame.node), index.get(next)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent), low.get(frame.node)));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        const selfLoop = (graph.get(frame.node) ?? []).some((e) => e.target === frame.node);
        if (component.length > 1 || selfLoop) components.push(component.sort());
      }
    }
  }
  return components;
}

/** One concrete cycle through the first file of a component (a shortest one, by breadth-first search). */
export function exampleCycle(graph, component) {
  const members = new Set(component);
  const start = component[0];
  const previous = new Map([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift();
    for (const { target } of graph.get(node) ?? []) {
      if (!members.has(target)) continue;
      if (target === start) {
        const path = [start];
        for (let n = node; n !== start; n = previous.get(n)) path.splice(1, 0, n);
        return [...path, start];
      }
      if (!previous.has(target)) {
        previous.set(target, node);
        queue.push(target);
      }
    }
  }
  return component;
}

/** Imports that cross a forbidden layer boundary. */
export function layerViolations(graph, root) {
  const out = [];
  const rel = (f) => relative(root, f).split(sep).join('/');
  const under = (path, prefix) => path === prefix || path.startsWith(`${prefix}/`);
  for (const [file, edges] of graph) {
    const from = rel(file);
    const rule = LAYERS.find((l) => under(from, l.from));
    if (rule === undefined) continue;
    for (const { target } of edges) {
      const to = rel(target);
      if (rule.deny.some((d) => under(to, d))) out.push(`${from} imports ${to} (${rule.from}/ must not import ${to})`);
      else if (rule.only !== undefined && !rule.only.some((d) => under(to, d))) {
        out.push(`${from} imports ${to} (${rule.from}/ may import only ${rule.only.join(', ')})`);
      }
    }
  }
  return [...new Set(out)];
}

/** The check's findings as lines (empty when the tree is clean), and the tolerated `known` violations
 *  found (KNOWN for the package's src/, none elsewhere). */
export function check(root, { types = false, known = resolve(root) === srcRoot ? KNOWN : new Map() } = {}) {
  const graph = importGraph(root);
  const cyclic = types ? graph : runtimeGraph(graph);
  const rel = (f) => relative(process.cwd(), f).split(sep).join('/');
  const problems = [];
  for (const component of findCycles(cyclic)) {
    const path = `import cycle: ${exampleCycle(cyclic, component).map(rel).join(' -> ')}`;
    // The path shown is a shortest one; a tangle of more files lists them all.
    const members = new Set(exampleCycle(cyclic, component)).size;
    problems.push(
      members < component.length ? `${path}\n  (all files of this tangle: ${component.map(rel).join(', ')})` : path,
    );
  }
  const tolerated = [];
  for (const violation of layerViolations(graph, root)) {
    const key = violation.slice(0, violation.indexOf(' ('));
    if (known.has(key)) tolerated.push(`${key}: ${known.get(key)}`);
    else problems.push(violation);
  }
  const seen = new Set(tolerated.map((t) => t.slice(0, t.indexOf(': '))));
  for (const key of known.keys()) {
    if (!seen.has(key)) problems.push(`known violation no longer found, remove it from KNOWN: ${key}`);
  }
  return { files: graph.size, problems, tolerated };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const types = args.includes('--types');
  const root = resolve(args.find((a) => !a.startsWith('--')) ?? 'src');
  const { files, problems, tolerated } = check(root, { types });
  for (const t of tolerated) console.log(`check-cycles: tolerated for now: ${t}`);
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    console.error(
      `check-cycles: ${problems.length} problem(s) in ${files} files under ${relative(process.cwd(), root) || '.'}`,
    );
    process.exit(1);
  }
  console.log(`check-cycles: no ${types ? '' : 'run-time '}import cycles, layers respected (${files} files)`);
}
