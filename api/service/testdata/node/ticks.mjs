// ticks.mjs: a stock gun.js client (npm gun 0.2020.1241) that follows a
// Luminary world's heartbeat exactly as the Krestianstvo Luminary seed does:
//
//	gun.get('lum/<I>/hb').on(node => ...)
//
// It waits for the first tick, then counts how many distinct ticks arrive
// during a window of wall time measured here in node, and computes Croquet
// time from HAM states with the seed's formula
// (state(tick) - state(start_time)) * rate / 1000.
//
// Usage: node ticks.mjs <relay url> <instance> <window ms>
// Prints: HI (relay connected), FIRST <time_s>, then
//         RESULT {"ticks":n,"window_ms":w,"first_s":a,"last_s":b,"monotone":true,"signers":[K…]}
// (signers: the keys that signed the ticks counted, from each tick's text).
import { gunClient, watchdog, Gun } from '../../../../internal/nodetest/js/peer.mjs';

const [url, instance, windowArg] = process.argv.slice(2);
if (!url || !instance) {
	console.error('usage: node ticks.mjs <relay url> <instance> <window ms>');
	process.exit(2);
}
const windowMs = Number(windowArg || 2000);
watchdog(windowMs + 60000);
const gun = gunClient(url, { super: false });
gun._.on('hi', function (peer) {
	this.to.next(peer);
	console.log('HI');
});

let started = 0;
let count = 0;
let lastTick = '';
let firstTime = null;
let lastTime = null;
let monotone = true;
let done = false;
const signers = new Set();

gun.get('lum/' + instance + '/hb').on(function (node) {
	if (done || !node || typeof node.tick !== 'string' || node.tick === lastTick) return;
	lastTick = node.tick;
	// The seed's formula, on HAM states.
	const state = Gun.state.is(node, 'tick');
	const start = Gun.state.is(node, 'start_time');
	const rate = typeof node.rate === 'number' ? node.rate : 1;
	const t = ((state - start) * rate) / 1000;
	if (lastTime !== null && t < lastTime) monotone = false;
	lastTime = t;
	if (!started) {
		started = performance.now();
		firstTime = t;
		console.log('FIRST ' + t);
		setTimeout(() => {
			done = true;
			const elapsed = performance.now() - started;
			console.log('RESULT ' + JSON.stringify({ ticks: count, window_ms: elapsed, first_s: firstTime, last_s: lastTime, monotone, signers: [...signers].sort() }));
			process.exit(0);
		}, windowMs);
		return;
	}
	count++;
	try {
		signers.add(JSON.parse(node.tick).signer);
	} catch {
		signers.add('(unparsable tick)');
	}
});
console.log('READY');
