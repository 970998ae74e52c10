// capture.mjs makes the gun.js SEA vectors of package auth (see
// ../README.md). It prints one JSON document on stdout.
//
// Real gun.js clients (npm gun 0.2020.1241, one per process: this one) run
// user().create, user().auth and put against a tiny fake relay in this
// process: a bare `ws` server, not a gun peer, that records every put frame,
// answers gets with "not found" and acks puts. The frames the client sends
// are the vectors. Writes that a gun.js client cannot or will not send (the
// certificate bypass of research/gun.md §5.2, forged, expired or
// multi-certificant certificates, prefix leaks) are built with SEA directly,
// exactly as gun.js's SEA.opt.pack + SEA.sign would build them.
//
// Usage: node capture.mjs <output.json>   (gun.js greets on stdout, so the
// document goes to a file)
import fs from 'node:fs';
import WebSocket from 'ws';
import { gunClient, SEA, watchdog } from '../../../internal/nodetest/js/peer.mjs';

watchdog(60000);
const log = (...a) => console.error(...a);

// --- the fake relay -------------------------------------------------------
const frames = []; // every put as {soul, field, value, state}
const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0 });
await new Promise((r) => wss.on('listening', r));
let seq = 0;
const rid = () => 'r' + Math.random().toString(36).slice(2, 12) + (seq++);
wss.on('connection', (sock) => {
	sock.on('message', (data) => {
		let msgs;
		try { msgs = JSON.parse(String(data)); } catch { return; }
		if (!Array.isArray(msgs)) msgs = [msgs];
		for (const m of msgs) {
			if (!m || typeof m !== 'object') continue;
			if (m.put) {
				for (const [soul, node] of Object.entries(m.put)) {
					const states = (node._ || {})['>'] || {};
					for (const [field, value] of Object.entries(node)) {
						if (field === '_') continue;
						frames.push({ soul, field, value, state: states[field] });
					}
				}
				sock.send(JSON.stringify({ '#': rid(), '@': m['#'], ok: 1 }));
			} else if (m.get) {
				sock.send(JSON.stringify({ '#': rid(), '@': m['#'] }));
			}
		}
	});
});
const url = `http://127.0.0.1:${wss.address().port}/gun`;

// --- helpers --------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function settle(n0, want, ms = 300) {
	// wait for at least want new frames, then until none arrived for ms
	const deadline = Date.now() + 30000;
	while (frames.length - n0 < want) {
		if (Date.now() > deadline) throw new Error(`only ${frames.length - n0} of ${want} frames`);
		await sleep(20);
	}
	let n = -1;
	while (n !== frames.length) { n = frames.length; await sleep(ms); }
	return frames.slice(n0);
}
// signPut builds a SEA user-space wrapper the way gun.js does (sea/index.js
// check.pub: SEA.opt.pack then SEA.sign, then JSON.stringify the wrapper).
async function signPut(pair, soul, field, value, state, extra = {}) {
	const m = { '#': soul, '.': field, ':': value, '>': state };
	const s = await SEA.sign(m, pair, null, { raw: 1 });
	return JSON.stringify({ ':': s.m[':'], '~': s.s, ...extra });
}
const parseCert = (c) => JSON.parse(c.slice(3));

// --- keys -----------------------------------------------------------------
const A = await SEA.pair(); // owner of the user space
const B = await SEA.pair(); // holder of A's certificate
const C = await SEA.pair(); // stranger / attacker
const now = Date.now();
const year = 365 * 24 * 3600 * 1000;

// --- 1. gun.js user().create then put (client D, made by gun itself) -------
const gun = gunClient(url);
const user = gun.user();
const alias = 'alice' + Math.random().toString(36).slice(2, 8);
let n0 = frames.length;
await new Promise((res, rej) => user.create(alias, 'correct horse battery', (ack) => ack.err ? rej(new Error(ack.err)) : res(ack)));
const created = await settle(n0, 5); // ~@alias, ~pub: pub alias epub auth
const D = { pub: user.is.pub };
log('created', alias, D.pub.slice(0, 8), created.length, 'frames');
user.leave();

// --- 2. gun.js user A writes its own space -------------------------------
n0 = frames.length;
await new Promise((res) => user.auth(A, res));
user.get('status').put('online');
user.get('profile').put({ name: 'Alice', age: 7 });
const own = await settle(n0, 4); // status, profile link, name, age
log('own', own.length, 'frames');

// --- 3. certificates by A --------------------------------------------------
const certInbox = await SEA.certify(B.pub, { '*': 'inbox', '+': '*' }, A, null, { expiry: now + year });
const certPrefix = await SEA.certify(B.pub, { '*': 'inbox' }, A, null, { expiry: now + year });
const certMulti = await SEA.certify([B.pub, C.pub], { '*': 'inbox', '+': '*' }, A, null, { expiry: now + year });
const certExpired = await SEA.certify(B.pub, { '*': 'inbox', '+': '*' }, A, null, { expiry: now - 60000 });
const certForged = await SEA.certify(C.pub, { '*': 'inbox', '+': '*' }, C, null, { expiry: now + year });
const certStar = await SEA.certify('*', [{ '*': 'hb' }], A);
user.leave();

// --- 4. gun.js user B writes into A's inbox with a certificate -------------
n0 = frames.length;
await new Promise((res) => user.auth(B, res));
gun.get('~' + A.pub).get('inbox').get(B.pub).put({ text: 'hi from B' }, null, { opt: { cert: certInbox } });
const certWrites = await settle(n0, 3); // ~A.inbox, ~A/inbox.<B>, ~A/inbox/<B>.text
log('cert writes', certWrites.length, 'frames');
user.leave();

// --- 5. raw writes built with SEA -----------------------------------------
const soulA = '~' + A.pub;
const st = now + 1; // states for the raw writes
const raw = [];
const add = (name, soul, field, value, state, expect, note) => raw.push({ name, soul, field, value, state, expect, note });

add('bypass', soulA, 'status', await signPut(C, soulA, 'status', 'PWNED', st, { '*': C.pub }), st,
	'restricted: Certificate required.', 'gun.md 5.2: * = attacker, no +; a stock relay stores it');
add('bypass_owner_field_pub_signed_by_other', soulA, 'alias', await signPut(C, soulA, 'alias', 'mallory', st, { '*': C.pub }), st,
	'restricted: Certificate required.', 'same bypass on another field');
add('forged_cert', soulA + '/inbox/' + C.pub, 'text', await signPut(C, soulA + '/inbox/' + C.pub, 'text', 'x', st, { '*': C.pub, '+': parseCert(certForged) }), st,
	'restricted: Certificate verification fail.', 'certificate signed by the writer, not the owner; gun drops silently');
add('cert_inbox_raw', soulA + '/inbox/' + B.pub, 'text', await signPut(B, soulA + '/inbox/' + B.pub, 'text', 'hello', st, { '+': parseCert(certInbox), '*': B.pub }), st,
	'ok', 'valid certificate, path inbox/<B>');
add('cert_multi', soulA + '/inbox/' + C.pub, 'text', await signPut(C, soulA + '/inbox/' + C.pub, 'text', 'multi', st, { '+': parseCert(certMulti), '*': C.pub }), st,
	'ok', 'certificate naming [B, C]; npm gun 1241 fails it silently (amark/gun#1144)');
add('cert_wrong_path', soulA, 'profile', await signPut(B, soulA, 'profile', 'hijack', st, { '+': parseCert(certInbox), '*': B.pub }), st,
	'restricted: Certificate verification fail.', 'path not in the policy');
add('cert_pub_not_in_path', soulA + '/inbox/' + C.pub, 'text', await signPut(B, soulA + '/inbox/' + C.pub, 'text', 'spoof', st, { '+': parseCert(certInbox), '*': B.pub }), st,
	`restricted: Path "inbox/${C.pub}" or key "text" must contain string "${B.pub}".`, 'policy + requires the writer pub in the path');
add('prefix_leak_key', soulA, 'inboxEVIL', await signPut(B, soulA, 'inboxEVIL', 'leak', st, { '+': parseCert(certPrefix), '*': B.pub }), st,
	'restricted: Certificate verification fail.', '{"*":"inbox"} must not match inboxEVIL (gun.js: prefix match, accepted)');
add('prefix_leak_soul', soulA + '/inboxEVIL', 'x', await signPut(B, soulA + '/inboxEVIL', 'x', 'leak', st, { '+': parseCert(certPrefix), '*': B.pub }), st,
	'restricted: Certificate verification fail.', 'path inboxEVIL/x (gun.js: accepted)');
add('prefix_ok_segment', soulA + '/inbox', 'x', await signPut(B, soulA + '/inbox', 'x', 'fine', st, { '+': parseCert(certPrefix), '*': B.pub }), st,
	'ok', 'path inbox/x matches {"*":"inbox"}');
const exp = now - 60000;
add('cert_expired_backdated', soulA + '/inbox/' + B.pub, 'text', await signPut(B, soulA + '/inbox/' + B.pub, 'text', 'late', exp - 1000, { '+': parseCert(certExpired), '*': B.pub }), exp - 1000,
	'restricted: Certificate expired.', 'state backdated before e; gun.js compares the state and accepts; the relay clock is past e');
add('cert_star_hb', soulA + '/hb', 'beat', await signPut(C, soulA + '/hb', 'beat', 1, st, { '+': parseCert(certStar), '*': C.pub }), st,
	'ok', 'certificate for "*" (anyone) on path hb');
add('cert_star_wrong_path', soulA + '/hbx', 'beat', await signPut(C, soulA + '/hbx', 'beat', 1, st, { '+': parseCert(certStar), '*': C.pub }), st,
	'restricted: Certificate verification fail.', 'hbx is not hb');
const signed = await signPut(A, soulA, 'status', 'away', st);
add('owner_raw', soulA, 'status', signed, st, 'ok', 'owner signature, no *');
add('shuffle_field', soulA, 'mood', signed, st, 'invalid: Unverified data.', 'owner-signed value moved to another field');
add('shuffle_state', soulA, 'status', signed, st + 1, 'invalid: Unverified data.', 'same value, other state');
add('tampered', soulA, 'status', signed.replace('"away"', '"AWAY"'), st, 'invalid: Unverified data.', 'value changed after signing');
add('unsigned', soulA, 'status', 'hello', st, 'auth-required: Unverified data.', 'no wrapper at all');
add('unsigned_null', soulA, 'status', null, st, 'auth-required: Unverified data.', 'amark/gun#1178');
add('account_not_same', soulA, 'pub', C.pub, st, 'invalid: Account not same!', '~A.pub must be A');
add('account_same', soulA, 'pub', A.pub, st, 'ok', '~A.pub raw');
add('alias_pubs_ok', '~@' + alias, soulA, { '#': soulA }, st, 'ok', 'unsigned, anyone may add a pub (amark/gun#1193)');
add('alias_pubs_mismatch', '~@' + alias, soulA, { '#': '~' + C.pub }, st, 'invalid: Alias not same!', '');
add('alias_pubs_null', '~@' + alias, soulA, null, st, 'invalid: Alias must exist!', '');
add('alias_list_ok', '~@', alias, { '#': '~@' + alias }, st, 'ok', '');
add('alias_list_mismatch', '~@', alias, { '#': '~@bob' }, st, 'invalid: Alias not same!', '');
add('alias_list_null', '~@', alias, null, st, 'invalid: Data must exist!', '');
const h = await SEA.work('hello world', null, null, { name: 'SHA-256' });
add('hash_ok', '#', h, 'hello world', st, 'ok', 'content addressing, base64 SHA-256');
add('hash_mismatch', '#', h, 'hello mars', st, 'invalid: Data hash not same as hash!', '');
add('other_soul', 'plain', 'x', 'y', st, 'restricted: Soul missing public key at \'x\'.', 'secure mode; open mode passes');

// --- SEA.opt.pub on awkward souls (which owner gun.js finds) ---------------
const owners = {};
for (const soul of ['~' + A.pub, '~' + A.pub + '/inbox/x', 'a~' + A.pub, '~' + A.pub + '~' + C.pub, '~X', '~X/Y/Z',
	'~@alice', 'x~@alice', '~', '~~X.Y', '~X.', '~.Y', '~X.Y.Z', '~X:Y', '~X\u00e9Y', '~X\u{1F600}Y', '~X\u2028Y', 'plain', 'lum/k1:abc/hb', '~X__-.Y-_']) {
	owners[soul] = SEA.opt.pub(soul) || '';
}

// --- output ---------------------------------------------------------------
const tag = (fs, expect, note) => fs.map((f) => ({ ...f, expect, note }));
const out = {
	generator: 'auth/testdata/node/capture.mjs',
	gun: (await import('gun/package.json', { with: { type: 'json' } })).default.version,
	now,
	pairs: { A, B, C: { pub: C.pub, priv: C.priv }, D },
	alias,
	certs: { inbox: certInbox, prefix: certPrefix, multi: certMulti, expired: certExpired, forged: certForged, star: certStar },
	captured: [
		...tag(created, 'ok', 'gun.js user().create'),
		...tag(own, 'ok', 'gun.js user().auth(A) then put'),
		...tag(certWrites, 'ok', 'gun.js user().auth(B) then put with opt.cert into A\'s inbox'),
	],
	raw,
	owners,
};
fs.writeFileSync(process.argv[2], JSON.stringify(out, null, 1) + '\n');
console.error('WROTE ' + process.argv[2]);
process.exit(0);
