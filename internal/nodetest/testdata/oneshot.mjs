// oneshot.mjs <mode>: "ok" prints two lines and exits 0; "fail" writes to
// stderr and exits 7; "hang" never exits.
const mode = process.argv[2];
if (mode === 'ok') {
	console.log('one');
	console.log('two');
} else if (mode === 'fail') {
	console.error('something broke');
	process.exit(7);
} else if (mode === 'hang') {
	setInterval(() => {}, 1000);
}
