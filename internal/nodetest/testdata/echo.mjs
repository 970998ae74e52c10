// echo.mjs: prints "READY", then echoes each stdin line as "ECHO <line>" and
// a few stderr lines; exits with the code given by a line "exit <n>".
import readline from 'node:readline';

console.log('READY');
console.error('stderr hello');
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
	if (line.startsWith('exit ')) process.exit(Number(line.slice(5)));
	console.log('ECHO ' + line);
});
