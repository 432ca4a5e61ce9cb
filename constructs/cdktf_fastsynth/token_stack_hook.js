// Preloaded into the jsii kernel (node --require) by kernel_launch.py.
//
// cdktf records a full JavaScript stack trace for every token it creates (each attribute
// reference such as `topic.id`, each Lazy and computed list) with an unlimited
// Error.stackTraceLimit. It only prints that trace when a token later fails to resolve,
// and in a Python app every frame is inside the jsii kernel, never in the user's code.
// Profiling a 100-workflow synth put ~10% of the wall time here (captureStackTrace plus
// V8 formatting the frames). This hook swaps cdktf's captureStackTrace for one that
// records nothing; cdktf then leaves the "Object creation stack" line out of resolution
// errors. Nothing that is synthesized changes. Any other file is untouched, CDK Terrain's
// cdktn/lib/tokens/private/stack-trace.js included: it also exports captureCreationStack,
// which this replacement would drop, and honours CDKTN_DISABLE_CREATION_STACK=1 instead
// (kernel_launch.py sets that).
"use strict";

const Module = require("module");

const TARGET = /[\\/]cdktf[\\/]lib[\\/]tokens[\\/]private[\\/]stack-trace\.js$/;
const REPLACEMENT =
  '"use strict";\n' +
  'Object.defineProperty(exports, "__esModule", { value: true });\n' +
  "exports.captureStackTrace = function captureStackTrace() { return []; };\n";

const compile = Module.prototype._compile;
Module.prototype._compile = function (content, filename) {
  if (typeof content === "string" && TARGET.test(filename)) {
    if (/exports\.captureStackTrace = captureStackTrace;/.test(content)) {
      content = REPLACEMENT;
    } else {
      process.stderr.write(
        `warning: ${filename} has an unexpected layout; keeping cdktf's token stack ` +
          "traces (slower, same output)\n",
      );
    }
  }
  return compile.call(this, content, filename);
};

module.exports = { TARGET, REPLACEMENT };
