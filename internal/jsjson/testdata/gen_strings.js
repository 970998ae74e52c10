// Generates strings.txt: JSON array of [a, b, sign(a<b ? -1 : a>b ? 1 : 0), JSON.stringify(a)].
let seed = 777;
function rnd(n) { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; }
const pools = [[0, 0x80], [0x80, 0x800], [0xd7f0, 0xd800], [0xe000, 0xe010], [0xfff0, 0x10000], [0x10000, 0x10010], [0x1f600, 0x1f610], [0x10fff0, 0x110000], [0x2028, 0x202a], [0, 0x20]];
function rs() { let s = ''; const n = rnd(4); for (let i = 0; i < n; i++) { const p = pools[rnd(pools.length)]; s += String.fromCodePoint(p[0] + rnd(p[1] - p[0])); } return s; }
const out = [];
for (let i = 0; i < 3000; i++) { const a = rs(), b = rnd(3) ? rs() : a + rs(); out.push([a, b, a < b ? -1 : a > b ? 1 : 0, JSON.stringify(a)]); }
console.log(JSON.stringify(out));
