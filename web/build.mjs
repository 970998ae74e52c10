// build.mjs bundles the page sources into web/dist (run from anywhere):
//
//   npm run build                      # writes web/dist
//   node web/build.mjs --outdir DIR    # writes DIR instead (the Go test uses this)
//
// esbuild (pinned in package.json) turns web/src/app.js and web/src/status.js
// into one minified ES module each; the HTML, the CSS and uPlot's CSS are
// copied beside them. The output depends only on the sources and the pinned
// versions, so the committed web/dist can be checked byte for byte.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const web = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(web);
const i = process.argv.indexOf('--outdir');
const outdir = path.resolve(i > 0 ? process.argv[i + 1] : path.join(web, 'dist'));

mkdirSync(outdir, { recursive: true });
for (const f of readdirSync(outdir)) rmSync(path.join(outdir, f), { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: { app: 'web/src/app.js', status: 'web/src/status.js' },
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
});

const copies = [
  [path.join(web, 'index.html'), 'index.html'],
  [path.join(web, 'status.html'), 'status.html'],
  [path.join(web, 'style.css'), 'style.css'],
  [path.join(root, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), 'uplot.css'],
];
for (const [from, to] of copies) copyFileSync(from, path.join(outdir, to));
console.log(`built ${readdirSync(outdir).sort().join(' ')} into ${path.relative(process.cwd(), outdir) || '.'}`);
