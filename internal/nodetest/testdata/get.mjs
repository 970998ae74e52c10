// get.mjs <relay-url> <soul> <field> [want]: prints "VALUE <json>" for the
// field once it is known (and equals want, if given), then exits 0.
import { gunClient, watchdog } from '../js/peer.mjs';

const [url, soul, field, want] = process.argv.slice(2);
const gun = gunClient(url);
watchdog(20000, 'get.mjs: value never arrived');

gun.get(soul).get(field).on((v) => {
	if (v === undefined || v === null) return;
	if (want !== undefined && String(v) !== want) return;
	console.log('VALUE ' + JSON.stringify(v));
	process.exit(0);
});
