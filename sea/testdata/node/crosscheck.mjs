// Cross-check of package sea against real gun.js SEA (0.2020.1241).
//
// Usage: node crosscheck.mjs <request.json>
// The request names operations for gun.js to perform on data made by Go, and
// data for gun.js to make for Go to check. The answer is one line on stdout:
// "RESULT " + JSON. Everything gun.js logs goes to stderr.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

// gun.js logs to console.log (greetings, "Signature did not match.", ...);
// keep stdout for the answer.
console.log = (...a) => process.stderr.write(a.map(String).join(' ') + '\n');
console.warn = console.log;
console.info = console.log;

const require = createRequire(import.meta.url);
require('gun');
const SEA = require('gun/sea');
SEA.throw = false;

const req = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const pair = req.pair; // made by Go: {pub, priv, epub, epriv}
const out = {};
const u = (v) => (v === undefined ? { undefined: true } : { value: v });

// 1. Go-signed envelopes: SEA.verify must return m; tampered ones undefined.
out.verify = [];
for (const x of req.verify || []) out.verify.push(u(await SEA.verify(x.env, x.pub)));

// 2. gun.js signs for Go to verify.
out.sign = [];
for (const d of req.sign || []) out.sign.push(await SEA.sign(d, pair));

// 3. Go-encrypted envelopes: SEA.decrypt must return the plaintext.
out.decrypt = [];
for (const x of req.decrypt || []) out.decrypt.push(u(await SEA.decrypt(x.env, x.pass)));

// 4. gun.js encrypts for Go to decrypt.
out.encrypt = [];
for (const x of req.encrypt || []) out.encrypt.push(await SEA.encrypt(x.data, x.pass));

// 5. Work, both modes.
out.work = [];
for (const x of req.work || []) out.work.push(await SEA.work(x.data, x.salt, null, x.opt || {}));

// 6. Secret: gun.js's own pair against Go's epub, and Go's pair against it.
const nodePair = await SEA.pair();
out.nodePair = { pub: nodePair.pub, epub: nodePair.epub, epriv: nodePair.epriv };
out.secretNodeSide = await SEA.secret(pair.epub, nodePair);

// 7. Certificates: gun.js verifies Go's; gun.js certifies for Go.
out.certVerify = [];
for (const x of req.certVerify || []) out.certVerify.push(u(await SEA.verify(x.cert, x.pub)));
out.certify = [];
for (const x of req.certify || []) {
  out.certify.push(await SEA.certify(x.certificants, x.policy, pair, null, x.expiry ? { expiry: x.expiry } : {}));
}

process.stdout.write('RESULT ' + JSON.stringify(out) + '\n');
process.exit(0);
