// gunrelay.mjs runs a stock gun.js relay (npm gun@0.2020.1241) for interop
// tests, on loopback only.
//
// Usage: node gunrelay.mjs '<json options>'
//
// Options (all optional): port (0 = let the OS pick), axe (default false),
// radisk (default false), file (RAD directory; required when radisk is true),
// gun (extra options merged into the Gun constructor's options).
// multicast is always false; stats is always false because gun's stats module
// writes into node_modules/gun.
//
// Prints "READY <port>" on stdout once listening; the relay is at
// http://127.0.0.1:<port>/gun. Exits when stdin closes or on SIGTERM.
import http from 'node:http';
import Gun from 'gun';

const o = JSON.parse(process.argv[2] || '{}');
const server = http.createServer((req, res) => {
	if (Gun.serve(req, res)) return; // serves /gun.js like a stock relay
	res.writeHead(404);
	res.end();
});

const opt = {
	...(o.gun || {}),
	web: server,
	axe: o.axe === true,
	radisk: o.radisk === true,
	localStorage: false,
	multicast: false,
	stats: false,
};
if (o.file) opt.file = o.file;
if (opt.radisk && !o.file) {
	console.error('gunrelay: radisk needs a file directory');
	process.exit(2);
}

const gun = Gun(opt);

server.on('error', (err) => {
	console.error('gunrelay: ' + err.message);
	process.exit(1);
});
server.listen(o.port || 0, '127.0.0.1', () => {
	console.log('READY ' + server.address().port);
});

const bye = () => process.exit(0);
process.on('SIGTERM', bye);
process.on('SIGINT', bye);
process.stdin.on('end', bye);
process.stdin.on('error', bye);
process.stdin.resume();

export default gun;
