// Stock gun.js relay for side-by-side benchmarks (loopback only).
//
//   node bench/gunrelay.mjs --port 0 --dir /tmp/radata [--no-radisk] [--axe]
//
// Starts Gun({web: server, multicast: false, axe: false, file: DIR}) on
// 127.0.0.1 with RAD storage on disk (the node default) and prints
// "READY <port>" once it listens. AXE is off by default: with AXE on, raw
// subscribers of a soul receive only a fraction of the puts to it, so fair
// fan-out comparisons use axe:false. The stats file is off (it would be
// written inside node_modules). gun is resolved from the repository's
// node_modules, or from the directory in $GUN_DIR (a folder whose
// node_modules holds gun) for experiments.
import { createRequire } from 'node:module';
import http from 'node:http';
import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';

function loadGun() {
  const require = createRequire(import.meta.url);
  try {
    return require('gun');
  } catch (err) {
    if (!process.env.GUN_DIR) throw err;
    return createRequire(path.join(path.resolve(process.env.GUN_DIR), 'noop.js'))('gun');
  }
}

function parseArgs(argv) {
  const o = { port: 0, dir: '', radisk: true, axe: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') o.port = Number(argv[++i]);
    else if (a === '--dir') o.dir = argv[++i];
    else if (a === '--no-radisk') o.radisk = false;
    else if (a === '--axe') o.axe = true;
    else {
      console.error(`gunrelay: unknown argument ${a}`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    console.error('gunrelay: --port must be 0..65535');
    process.exit(2);
  }
  if (!o.dir) o.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gunrelay-'));
  return o;
}

const opt = parseArgs(process.argv.slice(2));
const Gun = loadGun();
const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
server.listen(opt.port, '127.0.0.1', () => {
  Gun({
    web: server,
    multicast: false,
    axe: opt.axe,
    stats: false,
    file: opt.dir,
    radisk: opt.radisk,
  });
  const { port } = server.address();
  console.log(`READY ${port}`);
  console.log(`gunrelay: pid ${process.pid} dir ${opt.dir} radisk ${opt.radisk} axe ${opt.axe}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
