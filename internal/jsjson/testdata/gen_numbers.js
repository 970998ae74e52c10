// Generates numbers.txt: "<float64 bits hex> <JSON.stringify(x)>" per line.
let seed = 12345;
function rnd32() { seed = (seed * 1103515245 + 12345) >>> 0; return seed; }
const buf = new DataView(new ArrayBuffer(8));
const out = [];
function emit(x) { buf.setFloat64(0, x); out.push(buf.getBigUint64(0).toString(16).padStart(16, '0') + ' ' + JSON.stringify(x)); }
for (let i = 0; i < 1500; i++) { buf.setUint32(0, rnd32()); buf.setUint32(4, rnd32()); const x = buf.getFloat64(0); if (Number.isFinite(x)) emit(x); }
for (let e = -330; e <= 310; e++) { emit(Number('1e' + e)); emit(Number('1.5e' + e)); emit(Number('123456789e' + e)); }
for (let i = 0; i < 500; i++) { emit(1795666825781 + (rnd32() % 100000) / 1000 + (rnd32() % 999) / 999); }
emit(0.1 + 0.2); emit(5e-324); emit(Number.MAX_VALUE); emit(2 ** 53); emit(2 ** 53 + 2); emit(-(2 ** 70));
console.log(out.join('\n'));
