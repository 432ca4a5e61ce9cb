// Node side of lazy_provider.py, preloaded into the jsii runtime with `node --require`.
//
// The Google provider's lib/index.js requires every one of its ~1,470 (cdktf) or ~1,850
// (cdktn) submodules; the jsii kernel requires it when Python loads the assembly, which costs
// ~2-3 s and ~400-550 MB. This hook turns each of those lines into a getter that requires the
// submodule on first access, the way the kernel looks types up (closure.<submodule>.<Type>).
// Two layouts are known:
//   @cdktf/provider-google: `exports.x = require("./x");`
//   @cdktn/provider-google: `exports.x = __importStar(require("./x/index"));` after
//                           TypeScript's __createBinding/__setModuleDefault/__importStar
//                           helpers (the getter keeps the __importStar call)
// Any other shape of the file is left untouched (eager) with a one-line warning. Every other
// file is untouched.
"use strict";

const Module = require("module");

const TARGET = /[\\/]@cdkt[fn][\\/]provider-google[\\/](?:.*[\\/])?lib[\\/]index\.js$/;
const SUBMODULE = /^exports\.([A-Za-z_$][\w$]*) = require\("(\.\/[a-z0-9-]+)"\);$/;
const STAR_SUBMODULE =
  /^exports\.([A-Za-z_$][\w$]*) = __importStar\(require\("(\.\/[a-z0-9-]+\/index)"\)\);$/;
const ALLOWED = [
  /^"use strict";$/,
  /^\s*$/,
  /^\s*(?:\/\/|\/\*|\*)/,
  /^Object\.defineProperty\(exports, "__esModule", \{ value: true \}\);$/,
  /^exports\.[A-Za-z_$][\w$]*(?: = exports\.[A-Za-z_$][\w$]*)* = void 0;$/,
];
// TypeScript's module interop helpers: pure definitions, no side effects. Each starts on a
// line of its own and ends at the next line at column 0 that starts with "}" and ends in ";"
// (`}));`, `});`, `})();`); the lines in between are its body.
const HELPER_START =
  /^var (__createBinding|__setModuleDefault|__importStar) = \(this && this\.\1\) \|\| /;
const HELPER_END = /^\}.*;$/;

function lazyIndex(source) {
  let count = 0;
  let inHelper = false;
  const out = source.split("\n").map((line) => {
    if (inHelper) {
      if (HELPER_END.test(line)) inHelper = false;
      else if (!/^(?:\s|\})/.test(line)) return null;
      return line;
    }
    if (HELPER_START.test(line)) {
      inHelper = !HELPER_END.test(line);
      return line;
    }
    let match = SUBMODULE.exec(line);
    if (match !== null) {
      count += 1;
      return (
        `Object.defineProperty(exports, ${JSON.stringify(match[1])}, { enumerable: true, ` +
        `configurable: true, get: () => require(${JSON.stringify(match[2])}) });`
      );
    }
    match = STAR_SUBMODULE.exec(line);
    if (match !== null) {
      count += 1;
      // __importStar may build a new namespace object on each call: keep the first one.
      const name = JSON.stringify(match[1]);
      return (
        `Object.defineProperty(exports, ${name}, { enumerable: true, configurable: true, ` +
        `get: function () { const m = __importStar(require(${JSON.stringify(match[2])})); ` +
        `Object.defineProperty(exports, ${name}, { enumerable: true, configurable: true, ` +
        "writable: true, value: m }); return m; } });"
      );
    }
    return ALLOWED.some((re) => re.test(line)) ? line : null;
  });
  return count > 0 && !inHelper && !out.includes(null) ? out.join("\n") : null;
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

module.exports = { lazyIndex, TARGET };
