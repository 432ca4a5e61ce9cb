// The jsii kernel in one Node process: the JSII_RUNTIME that kernel_launch.py selects.
//
// jsii's own runtime script is a relay: it spawns lib/program.js as a child process and
// copies every request and response between its pipes and the child's fd 3. This script
// runs the same program.js in this process instead, on stdin/stdout (kernel_launch.py
// writes a copy whose I/O descriptors are 0 and 1), and does the two other jobs the relay
// did:
//   - whatever the kernel's JavaScript prints goes to stderr as the relay's
//     {"stdout": base64} / {"stderr": base64} lines, which jsii's Python side decodes,
//     so it can never corrupt the protocol on stdout;
//   - the kernel links packages with symlinks (fast) only when it sees
//     --preserve-symlinks in execArgv. The relay passed that flag to its child; here it
//     comes from NODE_OPTIONS, which execArgv does not list, so it is added when (and
//     only when) NODE_OPTIONS really turned it on.
"use strict";

const fs = require("fs");

const program = process.env.AI_WORKFLOW_JSII_PROGRAM;
if (!program) {
  fs.writeSync(2, "direct_kernel.js: AI_WORKFLOW_JSII_PROGRAM is not set\n");
  process.exit(1);
}

function writeAllSync(fd, buffer) {
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(fd, buffer, offset);
    } catch (error) {
      if (error.code !== "EAGAIN") throw error;
    }
  }
}

function forwardTo(stream) {
  return function write(chunk, encoding, callback) {
    const bytes = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(String(chunk), typeof encoding === "string" ? encoding : "utf8");
    writeAllSync(2, Buffer.from(`${JSON.stringify({ [stream]: bytes.toString("base64") })}\n`));
    const done = typeof encoding === "function" ? encoding : callback;
    if (typeof done === "function") process.nextTick(done);
    return true;
  };
}

process.stdout.write = forwardTo("stdout");
process.stderr.write = forwardTo("stderr");
const nodeOptions = (process.env.NODE_OPTIONS || "").split(/\s+/);
if (nodeOptions.includes("--preserve-symlinks") && !process.execArgv.includes("--preserve-symlinks")) {
  process.execArgv.push("--preserve-symlinks");
}

require(program);
