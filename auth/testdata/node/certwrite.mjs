// certwrite.mjs <relay-url>: owner A certifies B (SEA.certify, policy
// {"*":"inbox","+":"*"}); then B, a gun.js user (user().auth(pairB)), writes
// {text: "hi from B"} at ~A/inbox/<B> with opt.cert, as gun's docs show.
// Prints "OWNER <A pub>", "WRITER <B pub>", "ACK <ok|err text>", "DONE".
import { gunClient, SEA, watchdog } from '../../../internal/nodetest/js/peer.mjs';

watchdog(60000);
const [url] = process.argv.slice(2);
const out = (s) => process.stdout.write(s + '\n');
const A = await SEA.pair();
const B = await SEA.pair();
const cert = await SEA.certify(B.pub, { '*': 'inbox', '+': '*' }, A, null, { expiry: Date.now() + 3600e3 });
out('OWNER ' + A.pub);
out('WRITER ' + B.pub);
const gun = gunClient(url);
const user = gun.user();
await new Promise((res) => user.auth(B, res));
gun.get('~' + A.pub).get('inbox').get(B.pub).put({ text: 'hi from B' }, (ack) => {
	out('ACK ' + (ack.err ? ack.err : 'ok'));
	out('DONE');
	setTimeout(() => process.exit(0), 200);
}, { opt: { cert } });
