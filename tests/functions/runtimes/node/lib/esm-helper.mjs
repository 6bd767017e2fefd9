// SPDX-License-Identifier: Apache-2.0
export const greet = (name) => `hello from esm, ${name}`;
