// SPDX-License-Identifier: Apache-2.0
// Test function for fnbox's nodejs runtime, written as for AWS Lambda's Node.js runtime.
// Deploy with handler "index.handler" and send {"op": ..., ...}; the other exports
// (index.callback, index.succeed, index.nested.fn, ...) can be deployed on their own too.
'use strict';

const helper = require('./lib/helper');

let count = 0; // module state: survives between invocations of a warm instance
const started = Date.now();

class CustomError extends Error {
  constructor(message) {
    super(message);
    this.name = 'CustomError';
  }
}

const ops = {
  echo: async (event) => event,
  counter: async () => ({ count: ++count, pid: process.pid, started }),
  context: async (event, context) => ({
    awsRequestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    memoryLimitInMB: context.memoryLimitInMB,
    invokedFunctionArn: context.invokedFunctionArn,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    remainingMs: context.getRemainingTimeInMillis(),
    callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
    traceId: process.env._X_AMZN_TRACE_ID,
  }),
  env: async (event) => Object.fromEntries((event.keys || []).map((k) => [k, process.env[k]])),
  fail: async (event) => {
    throw new Error('something went wrong: ' + (event.why || 'no reason'));
  },
  fail_custom: async () => {
    throw new CustomError('custom failure');
  },
  output: async (event) => {
    console.log('to stdout:', event.text || '');
    console.error('to stderr:', event.text || '');
    process.stdout.write('raw write\n');
    return 'printed';
  },
  sleep: async (event, context) => {
    await new Promise((r) => setTimeout(r, (event.seconds || 1) * 1000));
    return { remainingMs: context.getRemainingTimeInMillis() };
  },
  memhog: async (event) => {
    const blocks = [];
    for (let i = 0; i < (event.mb || 16); i++) blocks.push(Buffer.alloc(1024 * 1024, 1));
    return { allocated_mb: blocks.length };
  },
  helper: async (event) => ({ greeting: helper.greet(event.name || 'world') }),
  exit: async (event) => process.exit(event.code === undefined ? 3 : event.code),
  undefined: async () => undefined,
  uncaught: async () => {
    setImmediate(() => {
      throw new Error('thrown outside the handler');
    });
    await new Promise((r) => setTimeout(r, 1000));
    return 'unreachable';
  },
  cwd: async () => ({ cwd: process.cwd(), uid: process.getuid(), execPath: process.execPath }),
};

exports.handler = async (event, context) => {
  if (event === null || typeof event !== 'object') return { not_an_object: event };
  return ops[event.op || 'echo'](event, context);
};

// Callback style: the result is serialized and sent once the event loop is empty (so after the
// timer below has run) unless callbackWaitsForEmptyEventLoop is false.
exports.callback = (event, context, callback) => {
  if (event.dontWait) context.callbackWaitsForEmptyEventLoop = false;
  if (event.fail) return callback(new Error('callback failure'));
  const result = { style: 'callback', event, timerRan: false };
  setTimeout(() => {
    result.timerRan = true;
  }, event.timerMs || 50);
  callback(null, result);
};

exports.callbackAfterTimer = (event, context, callback) => {
  const t0 = Date.now();
  setTimeout(() => callback(null, { waitedMs: Date.now() - t0 }), 100);
};

exports.succeed = (event, context) => {
  context.succeed({ style: 'context.succeed', event });
};

exports.contextFail = (event, context) => {
  context.fail(new Error('context.fail called'));
};

exports.syncNoReturn = (event, context) => {
  // A plain handler that never answers: Lambda answers null once the event loop is empty.
  return 'ignored';
};

exports.nested = { fn: async (event) => ({ nested: true, event }) };
