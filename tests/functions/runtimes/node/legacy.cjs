// SPDX-License-Identifier: Apache-2.0
// A CommonJS module with the .cjs extension: deploy with handler "legacy.handler".
module.exports.handler = async (event) => ({ module: 'cjs', event });
