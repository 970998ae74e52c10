// put.mjs <relay-url> <soul> <field> <value>: writes one field through the
// relay and prints "SENT <value>"; prints "ACK <value> <ok>" if the relay
// acknowledges (a relay acks only when it has storage). Then it writes again
// for each stdin line "put <value>" until stdin closes.
import { gunClient, watchdog } from '../js/peer.mjs';
import readline from 'node:readline';

const [url, soul, field, value] = process.argv.slice(2);
const gun = gunClient(url);
watchdog(30000);

function put(v) {
	gun.get(soul).put({ [field]: v }, (ack) => {
		if (ack.err) {
			console.log('ERR ' + v + ' ' + ack.err);
			return;
		}
		console.log('ACK ' + v + ' ' + JSON.stringify(ack.ok));
	});
	console.log('SENT ' + v);
}
put(value);

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
	const [cmd, ...rest] = line.split(' ');
	if (cmd === 'put') put(rest.join(' '));
});
rl.on('close', () => process.exit(0));
