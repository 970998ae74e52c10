// read.mjs <relay-url> <soul> <field> [ms]: a gun.js client (SEA loaded, so
// user-space values are verified and unwrapped) reads one field. Prints
// "VALUE <json>" or, if nothing arrives within ms (default 4000), "NONE".
import { gunClient, watchdog, onceValue } from '../../../internal/nodetest/js/peer.mjs';

watchdog(30000);
const [url, soul, field, ms] = process.argv.slice(2);
const gun = gunClient(url);
try {
	const v = await onceValue(gun.get(soul).get(field), Number(ms || 4000));
	process.stdout.write('VALUE ' + JSON.stringify(v) + '\n');
} catch {
	process.stdout.write('NONE\n');
}
setTimeout(() => process.exit(0), 100);
