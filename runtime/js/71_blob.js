// Blob and File (File API), and the byte stream that Blob.stream() and fetch bodies read from.

function concatBytes(chunks) {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}

// WebIDL [Clamp] long long: NaN is 0, the rest clamped and rounded half to even.
function clampLongLong(v) {
  let x = +v;
  if (x !== x) return 0;
  x = Math.min(Math.max(x, -9223372036854775808), 9223372036854775807);
  const f = Math.floor(x), d = x - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

// WebIDL long long: NaN and infinities are 0, the rest truncated (exact within 2^53).
function longLong(v) {
  const x = +v;
  return Number.isFinite(x) ? Math.trunc(x) + 0 : 0;
}

class Blob {
  _bytes;
  _type;
  constructor(parts = undefined, options = undefined) {
    // WebIDL: the parts (a sequence, its @@iterator read once, each item converted as it comes),
    // then the options; `endings` applies to the strings, so they are converted to text first
    const items = [];
    if (parts !== undefined) {
      const method = parts === null || (typeof parts !== "object" && typeof parts !== "function") ? undefined : parts[Symbol.iterator];
      if (typeof method !== "function") throw new TypeError("Blob parts must be a sequence (an iterable object)");
      for (const p of iterateWith(parts, method)) {
        items.push(p instanceof Blob ? p._bytes : p instanceof ArrayBuffer || ArrayBuffer.isView(p) ? toU8(p).slice() : toUSVString(p));
      }
    }
    let native = false;
    if (options !== undefined && options !== null) {
      if (typeof options !== "object" && typeof options !== "function") throw new TypeError("BlobPropertyBag must be an object");
      if (options.endings !== undefined) {
        const e = String(options.endings);
        if (e !== "transparent" && e !== "native") throw new TypeError(`Invalid endings: '${e}'`);
        native = e === "native";
      }
    } else options = {};
    const chunks = items.map((p) => (typeof p === "string" ? utf8Encode(native ? p.replace(/\r\n|\r/g, "\n") : p) : p));
    this._bytes = chunks.length === 1 ? chunks[0] : concatBytes(chunks);
    const t = options && options.type !== undefined ? String(options.type) : "";
    this._type = /^[\x20-\x7e]*$/.test(t) ? t.toLowerCase() : "";
  }
  get size() { return this._bytes.length; }
  get type() { return this._type; }
  slice(start = 0, end = this.size, type = "") {
    const n = this.size;
    start = clampLongLong(start); end = clampLongLong(end);
    const rel = (x) => (x < 0 ? Math.max(n + x, 0) : Math.min(x, n));
    const b = new Blob([], { type });
    b._bytes = this._bytes.slice(rel(start), Math.max(rel(end), rel(start)));
    return b;
  }
  async text() { const s = utf8Decode(this._bytes, false); return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s; }
  async arrayBuffer() { return this._bytes.slice().buffer; }
  async bytes() { return this._bytes.slice(); }
  stream() { return bytesStream(this._bytes); }
  get [Symbol.toStringTag]() { return "Blob"; }
  [INSPECT]() { return `Blob { size: ${this.size}, type: ${quoteString(this.type)} }`; }
}

class File extends Blob {
  #name;
  #lastModified;
  constructor(parts, name, options = {}) {
    if (arguments.length < 2) throw new TypeError("File constructor requires 2 arguments");
    super(parts, options);
    this.#name = String(name);
    this.#lastModified = options && options.lastModified !== undefined ? longLong(options.lastModified) : Date.now();
  }
  get name() { return this.#name; }
  get lastModified() { return this.#lastModified; }
  get [Symbol.toStringTag]() { return "File"; }
  [INSPECT]() { return `File { name: ${quoteString(this.name)}, size: ${this.size}, type: ${quoteString(this.type)} }`; }
}

// A byte stream (FileAPI and Fetch bodies are; BYOB readers work). It enqueues a copy: enqueue()
// takes (detaches) the buffer it is given, and a consumer writing to a chunk must not change the
// Blob or body it came from.
function bytesStream(bytes) {
  return new ReadableStream({
    type: "bytes",
    pull(c) {
      if (bytes.length) c.enqueue(bytes.slice());
      c.close();
    },
  });
}

expose("Blob", Blob);
expose("File", File);
