// peer.mjs: helpers for node scripts that act as gun.js peers in Luminary's
// Go tests. Import it by relative path, for example
//
//	import { gunClient, watchdog } from '../../internal/nodetest/js/peer.mjs';
//
// Each gun.js peer must run in its own node process.
import Gun from 'gun';

export { Gun };

// SEA is loaded by gun's node entry point.
export const SEA = Gun.SEA;

// gunClient returns a gun.js client connected only to url, with every
// side channel off: no localStorage, no RAD disk storage, no AXE, no UDP
// multicast, no stats file, and no radata/ directory (gun's rfs module creates
// one in the working directory unless rfs is false). extra is merged in
// first, so it cannot turn the side channels back on.
export function gunClient(url, extra = {}) {
	return Gun({
		...extra,
		peers: [url],
		localStorage: false,
		radisk: false,
		axe: false,
		multicast: false,
		stats: false,
		rfs: false,
	});
}

// watchdog exits the process with code 3 after ms milliseconds, so that a
// script waiting for an event that never comes cannot hang a test. The timer
// does not keep the process alive.
export function watchdog(ms, message = 'watchdog: timed out') {
	const t = setTimeout(() => {
		console.error(message);
		process.exit(3);
	}, ms);
	t.unref();
	return t;
}

// onceValue resolves with the first non-undefined value at chain, or rejects
// after ms milliseconds.
export function onceValue(chain, ms = 5000) {
	return new Promise((resolve, reject) => {
		const t = setTimeout(() => reject(new Error('onceValue: timed out')), ms);
		chain.on(function (v) {
			if (v === undefined) return;
			clearTimeout(t);
			this.off();
			resolve(v);
		});
	});
}
