// SPDX-License-Identifier: Apache-2.0
'use strict';

exports.greet = (name) => `hello, ${name}`;
