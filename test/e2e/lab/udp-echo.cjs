// UDP reachability without ICMP tools, for lab namespaces.
//   node udp-echo.cjs serve PORT LABEL     answers every datagram with LABEL
//                                         (IPv4 and IPv6, any local address);
//                                         prints "ready" once bound
//   node udp-echo.cjs probe ADDRESS PORT TIMEOUT_MS
//                                         sends one datagram, retrying every
//                                         200 ms, prints the first answer and
//                                         exits 0, or exits 1 at the timeout
'use strict';

const dgram = require('node:dgram');
const net = require('node:net');

const [mode, ...args] = process.argv.slice(2);

if (mode === 'serve') {
  const [port, label] = args;
  const socket = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  socket.on('message', (_message, peer) => socket.send(label, peer.port, peer.address));
  socket.bind(Number(port), '::', () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => process.exit(0));
} else if (mode === 'probe') {
  const [address, port, timeoutMs] = args;
  const socket = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  const ping = () => socket.send('ping', Number(port), address);
  const retry = setInterval(ping, 200);
  setTimeout(() => {
    process.stderr.write(`no answer from ${address} port ${port} in ${timeoutMs} ms\n`);
    process.exit(1);
  }, Number(timeoutMs));
  socket.on('message', (message) => {
    clearInterval(retry);
    process.stdout.write(`${message.toString()}\n`);
    process.exit(0);
  });
  ping();
} else {
  process.stderr.write('usage: udp-echo.cjs serve PORT LABEL | probe ADDRESS PORT TIMEOUT_MS\n');
  process.exit(2);
}
