// unit.mjs runs the node unit tests of web/ (sim, crypto, protocol, stream,
// gunwire) with node's test runner and exits non-zero if any fails. The Go
// test TestNodeUnit runs it, so `go test ./web` covers the JavaScript too.
// Direct use: node --test web/test/*.test.mjs (browser.test.mjs needs more;
// see web/README.md).
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const files = readdirSync(here)
  .filter((f) => f.endsWith('.test.mjs') && f !== 'browser.test.mjs')
  .sort()
  .map((f) => path.join(here, f));

let failed = 0;
let passed = 0;
const stream = run({ files, concurrency: 1, timeout: 120000 });
stream.on('test:fail', (ev) => {
  if (ev.details?.type !== 'suite') failed++;
});
stream.on('test:pass', (ev) => {
  if (ev.details?.type !== 'suite') passed++;
});
stream.compose(spec).pipe(process.stdout);
process.on('beforeExit', () => {
  console.log(`web unit: ${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
});
