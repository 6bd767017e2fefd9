// SPDX-License-Identifier: Apache-2.0
// Fails at load: deployed as "broken.handler" it must give Runtime.ImportModuleError.
require('no-such-module-anywhere');

exports.handler = async () => 'unreachable';
