// user.mjs <relay-url> <alias> <password>: a gun.js user (npm gun
// 0.2020.1241) signs up with user().create, logs in with user().auth and
// writes its own space: status = "online" and profile = {name}. Prints
// "PUB <pub>", one "ACK <field> <ok|err text>" per write, then "DONE".
import { gunClient, watchdog } from '../../../internal/nodetest/js/peer.mjs';

watchdog(60000);
const [url, alias, pass] = process.argv.slice(2);
const gun = gunClient(url);
const user = gun.user();
const out = (s) => process.stdout.write(s + '\n');

await new Promise((res, rej) => user.create(alias, pass, (ack) => (ack.err ? rej(new Error('create: ' + ack.err)) : res())));
await new Promise((res, rej) => user.auth(alias, pass, (ack) => (ack.err ? rej(new Error('auth: ' + ack.err)) : res())));
out('PUB ' + user.is.pub);
const put = (field, value) => new Promise((res) => user.get(field).put(value, (ack) => {
	out('ACK ' + field + ' ' + (ack.err ? ack.err : 'ok'));
	res();
}));
await put('status', 'online');
await put('profile', { name: alias });
out('DONE');
setTimeout(() => process.exit(0), 200);
