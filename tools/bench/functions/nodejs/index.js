// SPDX-License-Identifier: Apache-2.0
// fnbox-bench's echo for the nodejs runtime (handler "index.handler"), next to echo.so for native.
exports.handler = async (e) => e;
