// SPDX-License-Identifier: Apache-2.0
// An ES module handler: deploy with handler "esm.handler".
import { greet } from './lib/esm-helper.mjs';

let count = 0;

export const handler = async (event, context) => ({
  module: 'esm',
  count: ++count,
  greeting: greet(event.name || 'world'),
  requestId: context.awsRequestId,
});
