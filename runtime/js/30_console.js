// console, with values formatted roughly like node's util.inspect. Output goes to the host's log,
// tagged with the request whose code produced it.

const INSPECT = Symbol.for("nodejs.util.inspect.custom");
const IDENT = /^[A-Za-z_$][\w$]*$/;

function quoteString(s) {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  return q + s.replace(/[\\\n\r\t\x00-\x1f]/g, (c) => JSON.stringify(c).slice(1, -1)).replaceAll(q, "\\" + q) + q;
}

function ctorName(v) {
  const p = Object.getPrototypeOf(v);
  if (p === null) return "[Object: null prototype]";
  const c = p.constructor;
  return c && typeof c.name === "string" ? c.name : "Object";
}

function inspect(v, depth = 2, seen = []) {
  switch (typeof v) {
    case "string": return quoteString(v);
    case "number": return Object.is(v, -0) ? "-0" : String(v);
    case "bigint": return v + "n";
    case "boolean": case "undefined": return String(v);
    case "symbol": return v.toString();
    case "function": {
      const src = Function.prototype.toString.call(v);
      if (src.startsWith("class")) return `[class ${v.name || "(anonymous)"}]`;
      return v.name ? `[Function: ${v.name}]` : "[Function (anonymous)]";
    }
  }
  if (v === null) return "null";
  if (seen.includes(v)) return "[Circular *1]";
  if (typeof v[INSPECT] === "function") return String(v[INSPECT](depth, {}, inspect));
  if (v instanceof Error) {
    const head = v.stack ? `${v.name}: ${v.message}\n${String(v.stack).replace(/\n$/, "")}` : `${v.name}: ${v.message}`;
    const extra = Object.keys(v).filter((k) => k !== "stack" && k !== "message");
    if (!extra.length) return head;
    return head + " " + inspectProps(v, extra, depth, seen, "{", "}");
  }
  if (v instanceof Date) return isNaN(v) ? "Invalid Date" : v.toISOString();
  if (v instanceof RegExp) return String(v);
  if (v instanceof Promise) return "Promise { <pending> }";
  if (v instanceof WeakMap || v instanceof WeakSet) return `${ctorName(v)} { <items unknown> }`;
  if (v instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${v.byteLength} }`;
  const next = [...seen, v];
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const items = Array.from(v.length > 100 ? v.subarray(0, 100) : v, (x) => inspect(x));
    if (v.length > 100) items.push(`... ${v.length - 100} more items`);
    return `${ctorName(v)}(${v.length}) ${wrap(items, "[", "]")}`;
  }
  if (depth < 0) return Array.isArray(v) ? "[Array]" : `[${ctorName(v)}]`;
  if (Array.isArray(v)) {
    const items = [];
    const n = Math.min(v.length, 100);
    for (let i = 0; i < n; i++) items.push(i in v ? inspect(v[i], depth - 1, next) : "<empty>");
    if (v.length > 100) items.push(`... ${v.length - 100} more items`);
    return wrap(items, "[", "]");
  }
  if (v instanceof Map) {
    const items = [...v].map(([k, x]) => `${inspect(k, depth - 1, next)} => ${inspect(x, depth - 1, next)}`);
    return `Map(${v.size}) ${wrap(items, "{", "}")}`;
  }
  if (v instanceof Set) {
    const items = [...v].map((x) => inspect(x, depth - 1, next));
    return `Set(${v.size}) ${wrap(items, "{", "}")}`;
  }
  const name = ctorName(v);
  const prefix = name === "Object" ? "" : name + " ";
  const keys = Object.keys(v);
  if (!keys.length) return prefix + "{}";
  return prefix + inspectProps(v, keys, depth, next, "{", "}");
}

function inspectProps(v, keys, depth, seen, open, close) {
  const items = keys.map((k) => `${IDENT.test(k) ? k : quoteString(k)}: ${inspect(v[k], depth - 1, seen)}`);
  return wrap(items, open, close);
}

function wrap(items, open, close) {
  if (!items.length) return open + close;
  const oneLine = `${open} ${items.join(", ")} ${close}`;
  if (oneLine.length <= 80 && !oneLine.includes("\n")) return oneLine;
  return `${open}\n${items.map((s) => "  " + s.replaceAll("\n", "\n  ")).join(",\n")}\n${close}`;
}

function formatArgs(args) {
  let out = [];
  let i = 0;
  if (typeof args[0] === "string" && args[0].includes("%") && args.length > 1) {
    i = 1;
    const fmt = args[0].replace(/%([sdifoOjc%])/g, (m, c) => {
      if (c === "%") return "%";
      if (i >= args.length) return m;
      const a = args[i++];
      switch (c) {
        case "s": return typeof a === "string" ? a : inspect(a, 1);
        case "d": case "i": return typeof a === "object" ? "NaN" : String(c === "i" ? parseInt(a) : Number(a));
        case "f": return String(parseFloat(a));
        case "j": try { return JSON.stringify(a); } catch { return "[Circular]"; }
        case "c": return "";
        default: return inspect(a, 4);
      }
    });
    out.push(fmt);
  }
  for (; i < args.length; i++) out.push(typeof args[i] === "string" ? args[i] : inspect(args[i]));
  return out.join(" ");
}

function consoleOut(level, args) {
  let text;
  try { text = formatArgs(args); } catch (err) { text = "<unprintable: " + err + ">"; }
  hostSend("log", currentRid, level, text);
}

const counts = new Map();
const timersC = new Map();
let groupIndent = "";
const log = (level) => (...args) => {
  if (groupIndent) args = [groupIndent + formatArgs(args).replaceAll("\n", "\n" + groupIndent)];
  consoleOut(level, args);
};
const consoleObj = {
  log: log("log"), info: log("info"), warn: log("warn"), error: log("error"), debug: log("debug"), trace: log("debug"),
  dir: (v) => consoleOut("log", [inspect(v)]),
  table: (v) => consoleOut("log", [v]),
  assert: (cond, ...args) => { if (!cond) consoleOut("error", ["Assertion failed" + (args.length ? ":" : ""), ...args]); },
  count: (label = "default") => { const n = (counts.get(label) || 0) + 1; counts.set(label, n); consoleOut("log", [`${label}: ${n}`]); },
  countReset: (label = "default") => counts.delete(label),
  time: (label = "default") => timersC.set(label, performance.now()),
  timeLog: (label = "default", ...a) => {
    if (!timersC.has(label)) { consoleOut("warn", [`Timer '${label}' does not exist`]); return; }
    consoleOut("log", [`${label}: ${(performance.now() - timersC.get(label)).toFixed(3)}ms`, ...a]);
  },
  timeEnd: (label = "default") => {
    if (!timersC.has(label)) { consoleOut("warn", [`Timer '${label}' does not exist`]); return; }
    consoleOut("log", [`${label}: ${(performance.now() - timersC.get(label)).toFixed(3)}ms`]);
    timersC.delete(label);
  },
  dirxml: (...a) => consoleOut("log", a),
  clear: () => {},
  group: (...a) => { if (a.length) consoleOut("log", a); groupIndent += "  "; },
  groupEnd: () => { groupIndent = groupIndent.slice(2); },
};
consoleObj.groupCollapsed = consoleObj.group;
expose("console", consoleObj);
