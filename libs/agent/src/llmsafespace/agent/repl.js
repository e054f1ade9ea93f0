// run_code for JavaScript: one persistent `vm` context, driven by the agent like its
// Python worker (see worker.py): requests are frames on fd 3, replies frames on fd 4
// (a 4-byte big-endian length, then a JSON header), stdout and stderr are the pipes.
// A cell's completion value is the result (util.inspect); a thrown value is the error
// ({name, value, traceback}); a Promise result is awaited first, and a cell may `await`
// at its top level (awaits.js). `var`, functions and top-level `let`/`const` persist
// between cells.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const util = require("node:util");
const vm = require("node:vm");
const { createRequire } = require("node:module");

const REQUESTS = 3;
const REPLIES = 4;
const MAX_RESULT_BYTES = 256 * 1024; // display.py's MAX_BUNDLE_BYTES
const SHORTENED = "\n[truncated: the result exceeded the display size limit]";
if (process.argv[2]) process.chdir(process.argv[2]); // the agent's workspace

function readExactly(length) {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    let count;
    try {
      count = fs.readSync(REQUESTS, buffer, done, length - done, null);
    } catch (error) {
      if (error.code === "EAGAIN" || error.code === "EINTR") continue;
      throw error;
    }
    if (count === 0) return null;
    done += count;
  }
  return buffer;
}

function readFrame() {
  const prefix = readExactly(4);
  if (prefix === null) return null;
  const header = readExactly(prefix.readUInt32BE(0));
  return header === null ? null : JSON.parse(header.toString("utf8"));
}

function writeFrame(header) {
  const data = Buffer.from(JSON.stringify(header), "utf8");
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(data.length, 0);
  fs.writeSync(REPLIES, Buffer.concat([prefix, data]));
}

function describe(thrown) {
  if (thrown instanceof Error || (thrown && typeof thrown === "object" && "stack" in thrown)) {
    return {
      name: String(thrown.name || "Error"),
      value: String(thrown.message ?? ""),
      traceback: ownFrames(String(thrown.stack || `${thrown.name}: ${thrown.message}`)),
    };
  }
  const text = util.inspect(thrown);
  return { name: "Uncaught", value: text, traceback: `Uncaught ${text}\n` };
}

// A stack down to the last frame of a cell: the worker's own frames (and node:vm's)
// below it are not the user's, as Python's traceback starts at the user's code.
function ownFrames(stack) {
  const lines = stack.split("\n");
  const last = lines.findLastIndex((line) => /^\s+at (.*\()?<cell-\d+>:/.test(line));
  return last < 0 ? stack : lines.slice(0, last + 1).join("\n");
}

function newContext() {
  const cwd = process.cwd();
  const sandbox = {
    console,
    process,
    Buffer,
    URL,
    URLSearchParams,
    TextEncoder,
    TextDecoder,
    AbortController,
    fetch: globalThis.fetch,
    structuredClone,
    queueMicrotask,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    setImmediate,
    clearImmediate,
    require: createRequire(path.join(cwd, "<repl>")),
    __dirname: cwd,
    __filename: path.join(cwd, "<repl>"),
  };
  sandbox.module = { exports: {}, require: sandbox.require };
  sandbox.exports = sandbox.module.exports;
  sandbox.globalThis = sandbox;
  return vm.createContext(sandbox);
}

// A cell's own environment variables and working directory, put back as they were after it.
function enter(env, cwd) {
  const saved = { env: {}, cwd: null };
  for (const [name, value] of Object.entries(env ?? {})) {
    saved.env[name] = Object.hasOwn(process.env, name) ? process.env[name] : undefined;
    process.env[name] = value;
  }
  if (cwd) {
    try {
      saved.cwd = process.cwd();
    } catch {} // where the last cell left it, gone since
    process.chdir(cwd);
  }
  return saved;
}

function leave(saved) {
  for (const [name, value] of Object.entries(saved.env)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  if (saved.cwd !== null) {
    try {
      process.chdir(saved.cwd);
    } catch {}
  }
}

// The cell compiled; one that compiles only as an async function's body (a top-level
// `await`) is compiled so (awaits.js, required on the first such cell).
function compile(code, filename) {
  try {
    return new vm.Script(code, { filename });
  } catch (error) {
    const awaits = error instanceof SyntaxError && code.includes("await");
    const wrapped = awaits ? require("./awaits.js").wrapTopLevelAwait(code) : null;
    if (wrapped === null) throw error;
    return new vm.Script(wrapped, { filename });
  }
}

// A SIGINT (the agent's timeout or cancel) stops a running script (`breakOnSigint`) or,
// here, the wait for a cell's promise, so the interpreter and its state live on.
let interrupt = null;
process.on("SIGINT", () => interrupt?.(new Error("Script execution was interrupted by `SIGINT`")));

// (The timer keeps node running meanwhile: a promise nothing will settle leaves no
// work behind, and node would exit.)
function interruptible(promise) {
  const alive = setInterval(() => {}, 2 ** 30);
  return new Promise((resolve, reject) => {
    interrupt = reject;
    promise.then(resolve, reject);
  }).finally(() => {
    interrupt = null;
    clearInterval(alive);
  });
}

async function run(request, filename, context) {
  const saved = { env: {}, cwd: null };
  try {
    Object.assign(saved, enter(request.cellEnv, request.cwd));
    const code = String(request.code ?? "");
    const options = { displayErrors: false, breakOnSigint: true }; // a timeout
    let value = compile(code, filename).runInContext(context, options);
    if (value && typeof value.then === "function") value = await interruptible(value);
    return { ok: true, result: value === undefined ? null : util.inspect(value) };
  } catch (thrown) {
    return { ok: false, error: describe(thrown) };
  } finally {
    leave(saved);
  }
}

// The completion value as the cell's main result, as Python's is: a text/plain bundle
// (shortened past the display limit) the agent passes on before the reply.
function showMain(reply) {
  let text = reply.result;
  const truncated = Buffer.byteLength(text, "utf8") > MAX_RESULT_BYTES;
  if (truncated) {
    text = Buffer.from(text, "utf8").subarray(0, MAX_RESULT_BYTES).toString("utf8");
    text = text.replace(/\uFFFD$/, "") + SHORTENED;
  }
  reply.result = text;
  writeFrame({ display: { data: { "text/plain": text }, isMainResult: true, truncated } });
  readFrame(); // the agent's {shown: true}: it has passed the result on
}

async function serve() {
  const context = newContext();
  for (let number = 1; ; number += 1) {
    const request = readFrame();
    if (request === null) return;
    if (request.env) {
      Object.assign(process.env, request.env);
      writeFrame({ ok: true });
      continue;
    }
    const cpu = process.cpuUsage();
    const reply = await run(request, `<cell-${number}>`, context);
    await new Promise((resolve) => setImmediate(resolve)); // output written so far, flushed
    if (reply.ok && reply.result !== null) showMain(reply);
    const used = process.cpuUsage(cpu);
    reply.cpuMs = (used.user + used.system) / 1000;
    reply.peakMemoryBytes = process.resourceUsage().maxRSS * 1024;
    writeFrame(reply);
  }
}

process.on("unhandledRejection", (reason) => {
  console.error(describe(reason).traceback);
});
serve().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
