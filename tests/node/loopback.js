// Preloaded with `node -r ./loopback.js`: every server of this process listens on 127.0.0.1
// only (kinesis-mock binds 0.0.0.0 and has no option for it).
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] !== null && typeof args[0] === 'object') {
    args[0] = Object.assign({}, args[0], { host: '127.0.0.1' });
  } else if (typeof args[0] === 'number' || /^\d+$/.test(String(args[0]))) {
    if (typeof args[1] === 'string') args[1] = '127.0.0.1';
    else args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
