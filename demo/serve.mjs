// npm run demo:web: serves the repository read-only on 127.0.0.1 and prints the web demo's URL.
// The page needs no special headers (no cross-origin isolation), so any static file server works.
// Port: PORT (default 8080); 0 picks a free one.
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.map': 'application/json',
  '.json': 'application/json',
  '.css': 'text/css',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
};

/** Starts the server; resolves to { server, url } (the demo page's URL). */
export function serveDemo(port = Number(process.env.PORT ?? 8080), host = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      res.writeHead(400).end('bad request');
      return;
    }
    if (pathname === '/') {
      res.writeHead(302, { location: '/demo/web/' }).end();
      return;
    }
    let file = path.join(root, pathname);
    // Only files under the repository, never its dot-folders (.git).
    if (
      !file.startsWith(root + path.sep) ||
      path
        .relative(root, file)
        .split(path.sep)
        .some((part) => part.startsWith('.'))
    ) {
      res.writeHead(404).end('not found');
      return;
    }
    try {
      if (statSync(file).isDirectory()) {
        if (!pathname.endsWith('/')) {
          // Relative imports in the page resolve against the folder.
          res.writeHead(301, { location: `${pathname}/` }).end();
          return;
        }
        file = path.join(file, 'index.html');
      }
      if (!statSync(file).isFile()) throw new Error('not a file');
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
    });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: actual } = server.address();
      resolve({ server, url: `http://${host}:${actual}/demo/web/` });
    });
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stdout.write(`PORT must be an integer from 0 to 65535, got '${process.env.PORT}'\n`);
    process.exit(2);
  }
  try {
    const { url } = await serveDemo(port);
    process.stdout.write(`lazytensor web demo: ${url}  (Ctrl-C to stop)\n`);
  } catch (error) {
    process.stdout.write(`could not listen: ${error.message} (set PORT to another port)\n`);
    process.exit(1);
  }
}
