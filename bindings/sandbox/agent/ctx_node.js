"use strict";
// A JavaScript code context: one long-lived node process whose globals carry over from run to run.
//
// Started by the agent (interpreter.py) as `node [--expose-internals] ctx_node.js SOCKET READY_FD
// [LEASH_FD]`; the same JSON-lines protocol as ctx_python.py. Each context is its own process, so code
// runs in node's main realm (fetch, URL, Buffer, timers... all there) and contexts cannot see each other.
//
// Cells are rewritten REPL-style before they run (with acorn: node's own copy, reached through
// --expose-internals, else Debian's): top-level declarations become globals, so a later run sees
// them and running `const x = 1` twice is fine; the cell runs in an async function, so top-level
// await works; the last expression statement is the run's value (a promise is awaited).

//
// Startup snapshot: Debian's node has neither a built-in startup snapshot nor a code cache, so a bare
// start compiles node's own bootstrap (~120 ms here). The image builds a user-land snapshot of this
// file (`node --snapshot-blob ctx_node.blob --build-snapshot ctx_node.js`, interpreter.py's
// SNAPSHOT_BLOB); a context then starts from it as `node --snapshot-blob BLOB SOCKET READY_FD [LEASH_FD]`
// (~40% sooner) and runs main() below. Everything that reads the process (argv, cwd, env, stdio,
// signals) happens in main(), at run time, never while the snapshot is built.

const util = require("util");
const fs = require("fs");
const path = require("path");
const v8 = require("v8");

const BUILDING_SNAPSHOT = typeof v8.startupSnapshot?.isBuildingSnapshot === "function" && v8.startupSnapshot.isBuildingSnapshot();
let net, vm, Module; // required in main(): node 18 cannot put them in a snapshot
let sockPath, readyFd, leashFd;
const stringify = JSON.stringify;
const inspect = util.inspect;

// Loaded on the first run, not at start: creating a context is then only node's own start-up.
let acornModule;
function loadAcorn() {
  if (acornModule === undefined) {
    acornModule = null;
    // a plain require: in a process started from the snapshot, `require` is the snapshot builder's,
    // which only loads built-in modules
    const load = Module.createRequire(__filename);
    for (const name of ["internal/deps/acorn/acorn/dist/acorn", "acorn", "/usr/share/nodejs/acorn"]) {
      try {
        acornModule = load(name);
        break;
      } catch {}
    }
  }
  return acornModule;
}

let conn = null;
let current = null; // the run in progress: {interrupt(err)}
let count = 0;
let claimed = true; // set in main()

function send(msg) {
  if (conn !== null && !conn.destroyed) conn.write(stringify(msg) + "\n");
}

function setRequire(dir) {
  const req = Module.createRequire(path.join(dir, "[ploy-context]"));
  globalThis.require = req;
  globalThis.module = { exports: {}, require: req, paths: req.resolve.paths("x") || [] };
  globalThis.exports = globalThis.module.exports;
  globalThis.__filename = path.join(dir, "[ploy-context]");
  globalThis.__dirname = dir;
}

function patternNames(node, out) {
  switch (node.type) {
    case "Identifier":
      out.push(node.name);
      break;
    case "ObjectPattern":
      for (const p of node.properties) patternNames(p.type === "RestElement" ? p.argument : p.value, out);
      break;
    case "ArrayPattern":
      for (const e of node.elements) if (e) patternNames(e, out);
      break;
    case "RestElement":
      patternNames(node.argument, out);
      break;
    case "AssignmentPattern":
      patternNames(node.left, out);
      break;
  }
  return out;
}

// The cell as a script: `var <declared names>; (async () => { this.<fn> = <fn>; <cell> })()`, all the
// additions on the first line, so line numbers in stacks are the cell's own.
function rewrite(code) {
  const acorn = loadAcorn();
  if (acorn === null) return { source: `(async () => {${code}\n})()`, wrapped: false };
  let ast;
  try {
    ast = acorn.parse(code, { ecmaVersion: "latest", sourceType: "script", allowAwaitOutsideFunction: true });
  } catch {
    return null; // a syntax error: compiling the cell as it is gives V8's own message
  }
  const names = [];
  const functions = [];
  const edits = []; // [start, end, text], in source order
  ast.body.forEach((node, i) => {
    const last = i === ast.body.length - 1;
    if (node.type === "VariableDeclaration") {
      const parts = [];
      for (const d of node.declarations) {
        names.push(...patternNames(d.id, []));
        const target = code.slice(d.id.start, d.id.end);
        if (d.init) parts.push(`${target} = ${code.slice(d.init.start, d.init.end)}`);
        else if (node.kind !== "var") parts.push(`${target} = undefined`);
      }
      edits.push([node.start, node.end, parts.length ? `void (${parts.join(", ")});` : ";"]);
    } else if (node.type === "FunctionDeclaration" && node.id) {
      functions.push(node.id.name);
    } else if (node.type === "ClassDeclaration" && node.id) {
      names.push(node.id.name);
      edits.push([node.start, node.end, `${node.id.name} = ${code.slice(node.start, node.end)};`]);
    } else if (last && node.type === "ExpressionStatement") {
      edits.push([node.start, node.end, `return { value: (${code.slice(node.expression.start, node.expression.end)}) };`]);
    }
  });
  let body = "";
  let at = 0;
  for (const [start, end, text] of edits) {
    body += code.slice(at, start) + text;
    at = end;
  }
  body += code.slice(at);
  const head = (names.length ? `var ${[...new Set(names)].join(", ")}; ` : "") + "(async () => { " + functions.map((f) => `this.${f} = ${f}; `).join("");
  return { source: `${head}${body}\n})()`, wrapped: true };
}

function traceback(err) {
  const stack = err && typeof err.stack === "string" ? err.stack : String(err);
  return stack.split("\n").filter((line) => !line.includes(__filename) && !/\(node:internal|at node:internal|\(node:vm/.test(line));
}

function formats(value) {
  const out = {};
  if (value !== null && typeof value === "object") {
    try {
      const json = stringify(value);
      if (json !== undefined) out.json = JSON.parse(json);
    } catch {}
  }
  out.text = typeof value === "string" ? inspect(value) : inspect(value, { depth: 6, colors: false, maxArrayLength: 200 });
  return out;
}

async function run(code) {
  count += 1;
  const filename = `<cell-${count}>`;
  let value;
  let hasValue = false;
  let error = null;
  let interrupted = null;
  const stop = new Promise((_, reject) => {
    current = { interrupt: (err) => reject(err) };
  });
  stop.catch(() => {});
  try {
    const plan = rewrite(code);
    const script = new vm.Script(plan === null ? code : plan.source, { filename });
    let result = script.runInThisContext({ breakOnSigint: true, displayErrors: false });
    if (plan !== null && result && typeof result.then === "function") {
      result = await Promise.race([result, stop]);
      if (plan.wrapped && result !== undefined) {
        value = result.value;
        hasValue = true;
      }
    } else {
      value = result;
      hasValue = true;
    }
    if (hasValue && value !== null && (typeof value === "object" || typeof value === "function") && typeof value.then === "function") {
      value = await Promise.race([value, stop]);
    }
  } catch (err) {
    error = err;
  }
  current = null;
  if (error !== null) {
    const isError = error instanceof Error || (error && typeof error === "object" && "message" in error);
    send({
      type: "error",
      name: isError ? String(error.name || "Error") : "Error",
      value: isError ? String(error.message) : inspect(error),
      traceback: isError ? traceback(error) : [inspect(error)],
    });
  } else if (hasValue && value !== undefined) {
    send({ type: "result", ...formats(value) });
  }
  send({ type: "done", executionCount: count });
}

function init(msg) {
  if (msg.env && typeof msg.env === "object") {
    for (const k of Object.keys(process.env)) delete process.env[k];
    Object.assign(process.env, msg.env);
  }
  if (msg.cwd) {
    process.chdir(msg.cwd);
    setRequire(process.cwd());
  }
  claimed = true;
  send({ type: "done", executionCount: count, pid: process.pid });
}

function serve(socket) {
  if (conn !== null) conn.destroy();
  conn = socket;
  let buf = "";
  let queue = Promise.resolve();
  socket.setEncoding("utf8");
  socket.on("data", (data) => {
    buf += data;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const msg = JSON.parse(line);
      queue = queue.then(() => (msg.op === "init" ? init(msg) : run(String(msg.code ?? ""))));
    }
  });
  socket.on("close", () => {
    if (conn === socket) conn = null;
  });
  socket.on("error", () => {});
}

// `argsFrom`: where this process's own arguments start in process.argv (2 after a script, 1 when
// started from the snapshot, which has no script argument).
function main(argsFrom) {
  if (argsFrom === 1) {
    // node 18 warns about modules it cannot snapshot even when they load at run time, as here
    const emitWarning = process.emitWarning;
    process.emitWarning = () => {};
    try {
      net = require("net"); vm = require("vm"); Module = require("module");
    } finally {
      process.emitWarning = emitWarning;
    }
  } else {
    net = require("net"); vm = require("vm"); Module = require("module");
  }
  // as a script start has it: [node, this file, arguments...]
  if (argsFrom === 1) process.argv.splice(1, 0, __filename);
  [sockPath, readyFd, leashFd] = process.argv.slice(2);
  claimed = leashFd === undefined;
  for (const kind of ["stdout", "stderr"]) {
    process[kind].write = function (chunk, encoding, callback) {
      if (typeof encoding === "function") callback = encoding;
      if (current !== null) {
        const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
        send({ type: kind, text, timestamp: Date.now() });
      }
      if (typeof callback === "function") callback();
      return true;
    };
  }
  // An error thrown later by a timer or a forgotten promise must not end the context (nor its state).
  process.on("uncaughtException", (err) => {
    if (current !== null) send({ type: "stderr", text: `Uncaught ${inspect(err)}\n`, timestamp: Date.now() });
  });
  process.on("unhandledRejection", (reason) => {
    if (current !== null) send({ type: "stderr", text: `Unhandled rejection: ${inspect(reason)}\n`, timestamp: Date.now() });
  });
  process.on("SIGINT", () => {
    if (current !== null) current.interrupt(Object.assign(new Error("Script execution interrupted."), { name: "Interrupted" }));
  });

  setRequire(process.cwd());

  if (leashFd !== undefined) {
    const leash = fs.createReadStream(null, { fd: Number(leashFd) });
    const off = () => {
      if (!claimed) process.exit(0);
    };
    leash.on("data", () => {});
    leash.on("end", off);
    leash.on("error", off);
  }

  try {
    fs.unlinkSync(sockPath);
  } catch {}
  const server = net.createServer(serve);
  server.listen(sockPath, () => {
    fs.writeSync(Number(readyFd), "ready\n");
    fs.closeSync(Number(readyFd));
  });
}

if (BUILDING_SNAPSHOT) {
  // node's own acorn, loaded and run once into the snapshot: a context's first cell then does not
  // compile it (~10 ms)
  try {
    acornModule = require("internal/deps/acorn/acorn/dist/acorn");
    acornModule.parse("const a = await 1; a", { ecmaVersion: "latest", sourceType: "script", allowAwaitOutsideFunction: true });
  } catch {
    acornModule = undefined;
  }
  v8.startupSnapshot.setDeserializeMainFunction(() => main(1));
} else {
  main(2);
}
