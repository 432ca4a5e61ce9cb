// Node side of lazy_provider.py, preloaded into the jsii runtime with `node --require`.
//
// The provider's lib/index.js is ~1,470 lines of `exports.x = require("./x");`; the jsii
// kernel requires it when Python loads the assembly, which costs ~2.8 s and ~400 MB. This
// hook turns each of those lines into a getter that requires the submodule on first access,
// the way the kernel looks types up (closure.<submodule>.<Type>). Any other shape of the
// file is left untouched (eager) with a one-line warning. Every other file is untouched.
"use strict";

const Module = require("module");

const TARGET = /[\\/]@cdktf[\\/]provider-google[\\/](?:.*[\\/])?lib[\\/]index\.js$/;
const SUBMODULE = /^exports\.([A-Za-z_$][\w$]*) = require\("(\.\/[a-z0-9-]+)"\);$/;
const ALLOWED = [
  /^"use strict";$/,
  /^\s*$/,
  /^\s*(?:\/\/|\/\*|\*)/,
  /^Object\.defineProperty\(exports, "__esModule", \{ value: true \}\);$/,
  /^exports\.[A-Za-z_$][\w$]*(?: = exports\.[A-Za-z_$][\w$]*)* = void 0;$/,
];

function lazyIndex(source) {
  let count = 0;
  const out = source.split("\n").map((line) => {
    const match = SUBMODULE.exec(line);
    if (match !== null) {
      count += 1;
      return (
        `Object.defineProperty(exports, ${JSON.stringify(match[1])}, { enumerable: true, ` +
        `configurable: true, get: () => require(${JSON.stringify(match[2])}) });`
      );
    }
    return ALLOWED.some((re) => re.test(line)) ? line : null;
  });
  return count > 0 && !out.includes(null) ? out.join("\n") : null;
}

const compile = Module.prototype._compile;
Module.prototype._compile = function (content, filename) {
  if (typeof content === "string" && TARGET.test(filename)) {
    const lazy = lazyIndex(content);
    if (lazy === null) {
      process.stderr.write(
        `warning: ${filename} has an unexpected layout; loading all provider ` +
          "submodules in Node (slower, same output)\n",
      );
    } else {
      content = lazy;
    }
  }
  return compile.call(this, content, filename);
};

module.exports = { lazyIndex };
