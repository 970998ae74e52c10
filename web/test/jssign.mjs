// jssign.mjs prints, as one JSON array, signatures made by web/src/crypto.js
// with fresh keys over assorted messages. The Go test
// TestJSSignaturesVerifyInGo checks each with the Go package keys.
import { Key, message } from '../src/crypto.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

const out = [];
for (let i = 0; i < 12; i++) {
  const k = Key.generate();
  const parts = [utf8ToBytes('demo'), utf8ToBytes(`{"t":"drag","s":${i},"x":${i * 7},"y":3}`), new Uint8Array(i)];
  const label = i % 2 ? 'in' : 'tick';
  out.push({ pub: k.pub, label, parts_hex: parts.map(bytesToHex), sig_hex: bytesToHex(k.sign(message(label, ...parts))) });
}
console.log(JSON.stringify(out));
