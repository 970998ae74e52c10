// stubborn.mjs ignores SIGTERM and stdin EOF, so that only SIGKILL stops it.
process.on('SIGTERM', () => console.log('TERM ignored'));
setInterval(() => {}, 1000);
console.log('READY');
