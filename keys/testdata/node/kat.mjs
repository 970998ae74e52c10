// Independent check of keys/testdata/kat.json with @noble/curves:
// RFC 6979 deterministic ECDSA over SHA-256(msg), low-S, 64-byte r||s.
// Usage: node kat.mjs <kat.json>; prints one JSON line {"checked":N,"errors":[...]}.
import { readFileSync } from 'node:fs';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { p256 } from '@noble/curves/nist.js';

const b64url = (s) => new Uint8Array(Buffer.from(s, 'base64url'));
const hex = (b) => Buffer.from(b).toString('hex');

const vectors = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const errors = [];
for (const [i, v] of vectors.entries()) {
  const curve = v.curve === 'secp256k1' ? secp256k1 : p256;
  const sk = b64url(v.priv.startsWith('k1priv:') ? v.priv.slice(7) : v.priv);
  const msg = new Uint8Array(Buffer.from(v.msg_hex, 'hex'));
  // Public key text: k1: + compressed point, or SEA x.y.
  let pub;
  if (v.curve === 'secp256k1') {
    pub = 'k1:' + Buffer.from(curve.getPublicKey(sk, true)).toString('base64url');
  } else {
    const u = curve.getPublicKey(sk, false);
    pub = Buffer.from(u.slice(1, 33)).toString('base64url') + '.' + Buffer.from(u.slice(33)).toString('base64url');
  }
  if (pub !== v.pub) errors.push(`${i}: pub ${pub} != ${v.pub}`);
  const sig = curve.sign(msg, sk, { prehash: true, lowS: true });
  if (hex(sig) !== v.sig_hex) errors.push(`${i}: sig ${hex(sig)} != ${v.sig_hex}`);
  if (!curve.verify(Buffer.from(v.sig_hex, 'hex'), msg, curve.getPublicKey(sk), { prehash: true, lowS: true })) {
    errors.push(`${i}: recorded signature does not verify`);
  }
}
console.log(JSON.stringify({ checked: vectors.length, errors }));
