// A twinsan node's alias-IP manager in a child process, so that it runs in
// the network namespace it was started in (`ip netns exec NS node
// alias-ip-agent.cjs MODULE OPTIONS_JSON`). It loads the compiled manager
// (dist/alias-ip) and answers one JSON request per stdin line:
//   {"id":1,"op":"add","args":[{"address":"198.18.1.50","prefix":24,"interface":"eth1"}]}
//   -> {"id":1,"ok":true,"result":{"changed":true}}
//   -> {"id":1,"ok":false,"error":{"name":"AliasIpError","code":"ENOTALLOWED","message":"..."}}
// ops: add, remove, isServed, announce (spec, overrides), removeAll, owned,
// listen (host, port): a TCP server that answers "up" and closes.
// OPTIONS_JSON may hold "anchor": true for a TapLocalAnchor (anchor.ts).
// Prints {"ready":true} once the manager is constructed; exits when stdin closes.
'use strict';

const readline = require('node:readline');

const [modulePath, optionsJson] = process.argv.slice(2);
const net = require('node:net');
const { AliasIpManager, TapLocalAnchor } = require(modulePath);

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

let manager;
try {
  const logger = {
    info: (details, message) => process.stderr.write(`info ${message} ${JSON.stringify(details)}\n`),
    warn: (details, message) => process.stderr.write(`warn ${message} ${JSON.stringify(details)}\n`),
  };
  const { anchor, ...options } = JSON.parse(optionsJson);
  manager = new AliasIpManager({ ...options, logger, ...(anchor ? { anchor: new TapLocalAnchor() } : {}) });
} catch (err) {
  send({ ready: false, error: { name: err.name, code: err.code, message: err.message } });
  process.exit(1);
}

const ops = {
  add: (spec) => manager.add(spec),
  remove: (spec) => manager.remove(spec),
  isServed: (spec) => manager.isServed(spec),
  announce: async (spec, overrides) => {
    const result = await manager.announce(spec, overrides);
    return { ...result, refreshAt: result.refreshAt ? result.refreshAt.getTime() : undefined };
  },
  removeAll: () => manager.removeAll(),
  owned: async () => manager.ownedAddresses(),
  listen: (host, port) =>
    new Promise((resolve, reject) => {
      const server = net.createServer((c) => {
        c.on('error', () => undefined); // the prober leaves at once: a reset must not kill the agent
        c.end('up\n');
      });
      server.once('error', reject);
      server.listen(port, host, () => resolve(null));
    }),
};

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return;
  }
  const op = ops[request.op];
  try {
    if (!op) throw Object.assign(new Error(`unknown op ${request.op}`), { code: 'EINVAL' });
    const result = await op(...(request.args ?? []));
    send({ id: request.id, ok: true, result: result === undefined ? null : result });
  } catch (err) {
    send({ id: request.id, ok: false, error: { name: err.name, code: err.code, sysCode: err.sysCode, message: err.message } });
  }
}).on('close', () => process.exit(0));

send({ ready: true });
