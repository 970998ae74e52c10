// client.mjs: a gun.js client (npm gun 0.2020.1241) driven by Luminary's Go
// interop tests through stdin, one JSON command per line:
//
//	{"op":"put","id":"p1","path":["room"],"data":{"topic":"go"}}   -> ACK p1 {"ok":...,"err":...}
//	{"op":"on","id":"w1","path":["room"]}                         -> ON w1 {...}  (every update)
//	{"op":"once","id":"o1","path":["room","n"]}                   -> ONCE o1 {...} or null
//
// path is a chain of .get() keys from the root. Node data is printed
// without gun's "_" metadata; links print as {"#": soul}. Prints READY at
// start and HI when the relay connection is up.
//
// Usage: node client.mjs <relay url>
import readline from 'node:readline';
import { gunClient, watchdog } from '../../../internal/nodetest/js/peer.mjs';

const url = process.argv[2];
if (!url) {
	console.error('usage: node client.mjs <relay url>');
	process.exit(2);
}
watchdog(120000);
// super: false makes the node client behave like a browser client: gun's
// node entry point otherwise marks every node peer as a relay ("super"),
// which connects lazily and skips re-sending subscriptions on reconnect.
const gun = gunClient(url, { super: false });
// The root's internal 'hi' event fires when a relay connection is up.
gun._.on('hi', function (peer) {
	this.to.next(peer);
	console.log('HI');
});

const strip = (d) => {
	if (d === undefined || d === null || typeof d !== 'object') return d ?? null;
	const o = {};
	for (const k of Object.keys(d).sort()) if (k !== '_') o[k] = d[k];
	return o;
};

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
	if (!line.trim()) return;
	const c = JSON.parse(line);
	const ref = (c.path || []).reduce((r, k) => r.get(k), gun);
	switch (c.op) {
	case 'put':
		ref.put(c.data, (ack) => console.log('ACK ' + c.id + ' ' + JSON.stringify({ ok: ack.ok ?? null, err: ack.err ?? null })));
		break;
	case 'on':
		ref.on((d) => console.log('ON ' + c.id + ' ' + JSON.stringify(strip(d))));
		break;
	case 'once':
		ref.once((d) => console.log('ONCE ' + c.id + ' ' + JSON.stringify(strip(d))));
		break;
	default:
		console.error('unknown op ' + c.op);
		process.exit(2);
	}
});
rl.on('close', () => process.exit(0));
console.log('READY');
