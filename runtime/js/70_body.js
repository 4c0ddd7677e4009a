// Headers, Blob, File, FormData, and Request/Response with the Fetch Standard's body mixin.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\n\r\0]|[^\x00-\xff]/;

function normalizeValue(v) {
  v = typeof v === "string" ? v : String(v);
  const n = v.length;
  if (n === 0 || (v.charCodeAt(0) > 32 && v.charCodeAt(n - 1) > 32)) return v;
  return v.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
}

const validNames = new Map(); // name as given -> lowercased, for names already checked
function headerName(name) {
  name = typeof name === "string" ? name : String(name);
  let key = validNames.get(name);
  if (key === undefined) {
    if (!TOKEN.test(name)) throw new TypeError(`Invalid header name: "${name}"`);
    key = name.toLowerCase();
    if (validNames.size < 1000) validNames.set(name, key);
  }
  return key;
}

class Headers {
  // Private, so a Headers has no own properties (JSON.stringify gives "{}", as in browsers); the
  // runtime's other classes reach them through the _list/_guard accessors below.
  #list = []; // [lowercased name, value] in insertion order
  #guard = "none";
  get _list() { return this.#list; }
  set _list(v) { this.#list = v; }
  get _guard() { return this.#guard; }
  set _guard(v) { this.#guard = v; }
  constructor(init = undefined) {
    if (init === undefined) return;
    if (init instanceof Headers) { this.#list = init.#list.map((p) => p.slice()); return; }
    if (init === null || (typeof init !== "object" && typeof init !== "function")) {
      throw new TypeError("Headers init must be an object or iterable");
    }
    if (typeof init[Symbol.iterator] === "function") {
      for (const pair of init) {
        const arr = pair === null || typeof pair !== "object" ? null : Array.from(pair);
        if (!arr || arr.length !== 2) throw new TypeError("Headers init pairs must have exactly two items");
        this.append(arr[0], arr[1]);
      }
    } else if (Object.getPrototypeOf(init) === Object.prototype && Object.getOwnPropertySymbols(init).length === 0) {
      // the usual `{ "Content-Type": "..." }`: Object.keys gives exactly its own enumerable string keys
      const keys = Object.keys(init);
      for (let i = 0; i < keys.length; i++) this.append(keys[i], init[keys[i]]);
    } else {
      // WebIDL record<ByteString, ByteString>: every own enumerable key, symbols included (they throw)
      for (const k of Reflect.ownKeys(init)) {
        const desc = Object.getOwnPropertyDescriptor(init, k);
        if (!desc || !desc.enumerable) continue;
        if (typeof k === "symbol") throw new TypeError("Headers init keys must be strings");
        this.append(k, init[k]);
      }
    }
  }
  #check(value) {
    if (this.#guard === "immutable") throw new TypeError("Headers are immutable");
    if (value !== undefined && BAD_VALUE.test(value)) {
      throw new TypeError(`Invalid header value: ${JSON.stringify(value)}`);
    }
  }
  append(name, value) {
    const key = headerName(name);
    value = normalizeValue(value);
    this.#check(value);
    this.#list.push([key, value]);
  }
  delete(name) {
    const key = headerName(name);
    this.#check();
    this.#list = this.#list.filter(([k]) => k !== key);
  }
  get(name) {
    const key = headerName(name);
    const list = this.#list;
    let out = null;
    for (let i = 0; i < list.length; i++) if (list[i][0] === key) out = out === null ? list[i][1] : out + ", " + list[i][1];
    return out;
  }
  getSetCookie() { return this.#list.filter(([k]) => k === "set-cookie").map(([, v]) => v); }
  getAll(name) { const key = headerName(name); return this.#list.filter(([k]) => k === key).map(([, v]) => v); }
  has(name) {
    const key = headerName(name);
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i][0] === key) return true;
    return false;
  }
  set(name, value) {
    const key = headerName(name);
    value = normalizeValue(value);
    this.#check(value);
    const i = this.#list.findIndex(([k]) => k === key);
    if (i < 0) this.#list.push([key, value]);
    else {
      this.#list[i] = [key, value];
      this.#list = this.#list.filter(([k], j) => j <= i || k !== key);
    }
  }
  // "sort and combine": names sorted, values combined, set-cookie kept apart
  _sorted() {
    const names = [...new Set(this.#list.map(([k]) => k))].sort();
    const out = [];
    for (const n of names) {
      if (n === "set-cookie") for (const v of this.getSetCookie()) out.push([n, v]);
      else out.push([n, this.get(n)]);
    }
    return out;
  }
  forEach(cb, thisArg) {
    if (typeof cb !== "function") throw new TypeError("forEach callback must be a function");
    // live, like the iterators: entries set or deleted by the callback are seen
    for (let i = 0, pairs = this._sorted(); i < pairs.length; pairs = this._sorted(), i++) cb.call(thisArg, pairs[i][1], pairs[i][0], this);
  }
  entries() { return PairIterator("Headers Iterator", () => this._sorted(), "entries"); }
  keys() { return PairIterator("Headers Iterator", () => this._sorted(), "keys"); }
  values() { return PairIterator("Headers Iterator", () => this._sorted(), "values"); }
  [Symbol.iterator]() { return this.entries(); }
  get [Symbol.toStringTag]() { return "Headers"; }
  [INSPECT]() { return "Headers " + inspect(Object.fromEntries(this._sorted())); }
}

function headersFromFlat(flat, guard) {
  const h = new Headers();
  if (flat) {
    const parts = flat.split("\n");
    const list = h._list;
    for (let i = 0; i + 1 < parts.length; i += 2) list.push([parts[i], parts[i + 1]]);
  }
  h._guard = guard;
  return h;
}

// ---------------------------------------------------------------- Blob, File
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
    if (parts !== undefined && (parts === null || typeof parts !== "object" || typeof parts[Symbol.iterator] !== "function")) {
      throw new TypeError("Blob parts must be a sequence (an iterable object)");
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
    const chunks = [];
    for (const p of parts || []) {
      if (p instanceof Blob) chunks.push(p._bytes);
      else if (p instanceof ArrayBuffer || ArrayBuffer.isView(p)) chunks.push(toU8(p).slice());
      else chunks.push(utf8Encode(native ? String(p).replace(/\r\n|\r/g, "\n") : String(p)));
    }
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

// A byte stream (FileAPI and Fetch bodies are; BYOB readers work): the chunk handed out is a
// copy, so a consumer writing to it cannot change the Blob or body it came from.
function bytesStream(bytes) {
  return new ReadableStream({
    type: "bytes",
    pull(c) {
      if (bytes.length) c.enqueue(bytes);
      c.close();
    },
  });
}

// ---------------------------------------------------------------- FormData
function formName(argc, name) {
  if (argc === 0) throw new TypeError("FormData: a name argument is required");
  return toUSVString(name);
}

class FormData {
  _entries = [];
  constructor(form) {
    if (form !== undefined) throw new TypeError("FormData(form) is not supported outside a browser");
  }
  #entry(name, value, filename) {
    name = toUSVString(name);
    if (value instanceof Blob) {
      if (!(value instanceof File) || filename !== undefined) {
        const f = new File([], filename !== undefined ? String(filename) : value instanceof File ? value.name : "blob", { type: value.type });
        f._bytes = value._bytes;
        value = f;
      }
    } else value = toUSVString(value);
    return [name, value];
  }
  append(name, value, filename) {
    if (arguments.length < 2) throw new TypeError("FormData.append requires 2 arguments");
    if (arguments.length > 2 && !(value instanceof Blob)) throw new TypeError("FormData.append: a filename needs a Blob value");
    this._entries.push(this.#entry(name, value, filename));
  }
  delete(name) { name = formName(arguments.length, name); this._entries = this._entries.filter(([k]) => k !== name); }
  get(name) { name = formName(arguments.length, name); const e = this._entries.find(([k]) => k === name); return e ? e[1] : null; }
  getAll(name) { name = formName(arguments.length, name); return this._entries.filter(([k]) => k === name).map(([, v]) => v); }
  has(name) { name = formName(arguments.length, name); return this._entries.some(([k]) => k === name); }
  set(name, value, filename) {
    if (arguments.length < 2) throw new TypeError("FormData.set requires 2 arguments");
    if (arguments.length > 2 && !(value instanceof Blob)) throw new TypeError("FormData.set: a filename needs a Blob value");
    const e = this.#entry(name, value, filename);
    const i = this._entries.findIndex(([k]) => k === e[0]);
    if (i < 0) this._entries.push(e);
    else this._entries = [...this._entries.slice(0, i), e, ...this._entries.slice(i + 1).filter(([k]) => k !== e[0])];
  }
  forEach(cb, thisArg) { for (const [k, v] of this._entries.slice()) cb.call(thisArg, v, k, this); }
  entries() { return PairIterator("FormData Iterator", () => this._entries, "entries"); }
  keys() { return PairIterator("FormData Iterator", () => this._entries, "keys"); }
  values() { return PairIterator("FormData Iterator", () => this._entries, "values"); }
  [Symbol.iterator]() { return this.entries(); }
  get [Symbol.toStringTag]() { return "FormData"; }
}

function encodeMultipart(fd) {
  const rnd = new Uint8Array(12);
  randomBytesInto(rnd);
  const boundary = "----PloyFormBoundary" + Array.from(rnd, (b) => b.toString(16).padStart(2, "0")).join("");
  // names get their newlines normalized to CRLF, filenames do not; both then escape " CR LF
  const esc = (s) => s.replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
  const chunks = [];
  for (const [name, value] of fd._entries) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${esc(name.replace(/\r\n|\r|\n/g, "\r\n"))}"`;
    if (value instanceof File) {
      head += `; filename="${esc(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`;
      chunks.push(utf8Encode(head), value._bytes, utf8Encode("\r\n"));
    } else {
      chunks.push(utf8Encode(head + "\r\n\r\n" + value.replace(/\r\n|\r|\n/g, "\r\n") + "\r\n"));
    }
  }
  chunks.push(utf8Encode(`--${boundary}--\r\n`));
  return { bytes: concatBytes(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

function parseMultipart(bytes, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!m) throw new TypeError("multipart/form-data without a boundary");
  const boundary = "--" + (m[1] || m[2]).trim();
  const bin = bytesToLatin1(bytes);
  const fd = new FormData();
  const parts = bin.split(boundary);
  for (let i = 1; i < parts.length; i++) {
    let part = parts[i];
    if (part.startsWith("--")) break;
    part = part.replace(/^\r\n/, "").replace(/\r\n$/, "");
    const sep = part.indexOf("\r\n\r\n");
    if (sep < 0) continue;
    const head = utf8Decode(latin1ToBytes(part.slice(0, sep)), false);
    const body = part.slice(sep + 4);
    const disp = /content-disposition:[^\r\n]*?\bname="([^"]*)"/i.exec(head);
    if (!disp) continue;
    const fn = /filename="([^"]*)"/i.exec(head);
    const ct = /content-type:\s*([^\r\n]*)/i.exec(head);
    if (fn) {
      const f = new File([], fn[1], { type: ct ? ct[1].trim() : "" });
      f._bytes = latin1ToBytes(body);
      fd.append(disp[1], f);
    } else fd.append(disp[1], utf8Decode(latin1ToBytes(body), false));
  }
  return fd;
}

// ---------------------------------------------------------------- body mixin
// A body is {source, stream}: `source` (a string or Uint8Array) is kept until someone touches
// `.body`, so the common cases (text and JSON responses) never build a stream at all.
function extractBody(init) {
  if (init === null || init === undefined) return [null, null];
  if (typeof init === "string") return [{ source: init, stream: null }, "text/plain;charset=UTF-8"];
  if (init instanceof ReadableStream) {
    if (init.locked || init._disturbed) throw new TypeError("ReadableStream is locked or disturbed");
    return [{ source: null, stream: init }, null];
  }
  if (init instanceof ArrayBuffer || ArrayBuffer.isView(init)) return [{ source: toU8(init).slice(), stream: null }, null];
  if (init instanceof URLSearchParams) return [{ source: init.toString(), stream: null }, "application/x-www-form-urlencoded;charset=UTF-8"];
  if (init instanceof Blob) return [{ source: init._bytes, stream: null }, init.type || null];
  if (init instanceof FormData) {
    const { bytes, type } = encodeMultipart(init);
    return [{ source: bytes, stream: null }, type];
  }
  if (typeof init === "object" && (typeof init[Symbol.asyncIterator] === "function")) {
    return [{ source: null, stream: ReadableStream.from(init) }, null];
  }
  return [{ source: String(init), stream: null }, "text/plain;charset=UTF-8"];
}

class Body {
  _body = null;
  _used = false;
  get body() {
    const b = this._body;
    if (b === null) return null;
    if (b.stream === null) {
      b.stream = bytesStream(b.bin !== undefined ? latin1ToBytes(b.bin) : typeof b.source === "string" ? utf8Encode(b.source) : b.source);
      b.bin = undefined;
      b.source = null;
      // consumed before anyone looked: the stream was read to its end by a reader still holding it
      if (this._used) { b.stream._disturbed = true; b.stream.getReader(); }
    }
    return b.stream;
  }
  get bodyUsed() {
    const b = this._body;
    return this._used || (b !== null && b.stream !== null && b.stream._disturbed);
  }
  // Resolves with a string (text), a Uint8Array, or {bin} (bytes as a latin-1 string) of the whole body.
  _consume() {
    const b = this._body;
    if (b === null) return Promise.resolve(new Uint8Array(0)); // a null body is never disturbed
    if (this.bodyUsed) return Promise.reject(new TypeError("Body has already been used"));
    if (b.stream !== null && b.stream.locked) return Promise.reject(new TypeError("ReadableStream is locked"));
    this._used = true;
    if (b.stream === null) return Promise.resolve(b.bin !== undefined ? { bin: b.bin } : b.source);
    return readAll(b.stream);
  }
  async text() {
    const v = await this._consume();
    let s;
    if (typeof v === "string") s = v;
    else if (v.bin !== undefined) s = v.bin.length ? utf8DecodeBin(v.bin, false) : "";
    else s = utf8Decode(v, false);
    return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s; // UTF-8 decode drops a leading BOM
  }
  async json() {
    return JSON.parse(await this.text());
  }
  async bytes() {
    const v = await this._consume();
    if (v.bin !== undefined) return latin1ToBytes(v.bin);
    return typeof v === "string" ? utf8Encode(v) : v;
  }
  async arrayBuffer() {
    const v = await this.bytes();
    return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength ? v.buffer : v.slice().buffer;
  }
  async blob() {
    return new Blob([await this.bytes()], { type: this.headers.get("content-type") || "" });
  }
  async formData() {
    const ct = this.headers.get("content-type") || "";
    if (/^multipart\/form-data/i.test(ct)) return parseMultipart(await this.bytes(), ct);
    if (/^application\/x-www-form-urlencoded/i.test(ct)) {
      const fd = new FormData();
      for (const [k, v] of formDecode(await this.text())) fd.append(k, v);
      return fd;
    }
    throw new TypeError(`Could not parse content as FormData (content-type: ${ct || "none"})`);
  }
  _cloneBody() {
    const b = this._body;
    if (b === null) return null;
    if (this.bodyUsed) throw new TypeError("Cannot clone a body that has already been used");
    if (b.stream === null) return { source: b.source, bin: b.bin, stream: null };
    const [s1, s2] = b.stream.tee();
    b.stream = s1;
    return { source: null, stream: s2 };
  }
}

async function readAll(stream) {
  const reader = stream.getReader();
  const chunks = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (!(value instanceof Uint8Array)) {
      const err = new TypeError("A body stream chunk must be a Uint8Array");
      reader.cancel(err).catch(() => {});
      throw err;
    }
    chunks.push(value);
  }
  reader.releaseLock();
  return concatBytes(chunks);
}

// ---------------------------------------------------------------- Request
const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]; // normalized to upper case; PATCH is not (Fetch standard)
const INTERNAL = Symbol("internal");

class Request extends Body {
  _url; _method; _headers; _signal; _redirect = "follow"; _mode = "cors"; _cache = "default"; _credentials = "same-origin"; cf = undefined;
  constructor(input, init = {}) {
    super();
    if (input === INTERNAL) return;
    if (arguments.length === 0) throw new TypeError("Request constructor requires an input");
    if (init === null || init === undefined) init = {};
    else if (typeof init !== "object" && typeof init !== "function") throw new TypeError("RequestInit must be an object");
    let src = null;
    if (input instanceof Request) {
      src = input;
      this._url = input._url;
      this._method = input._method;
      this._headers = new Headers(input._headers);
      this._redirect = input._redirect;
      this._mode = input._mode; this._cache = input._cache; this._credentials = input._credentials;
      if (input._extra !== undefined) this._extra = input._extra;
      if (init.signal === undefined && input._signal) this._signal = followSignal(input._signal);
    } else {
      let u;
      try { u = new URL(String(input)); } catch { throw new TypeError(`Invalid URL: ${input}`); }
      if (u.username || u.password) throw new TypeError("Request URL must not include credentials");
      this._url = u.href;
      this._method = "GET";
      this._headers = new Headers();
    }
    if (init.method !== undefined) {
      const m = String(init.method);
      if (!TOKEN.test(m)) throw new TypeError(`Invalid method: ${m}`);
      const up = m.toUpperCase();
      if (up === "CONNECT" || up === "TRACE" || up === "TRACK") throw new TypeError(`Forbidden method: ${m}`);
      this._method = METHODS.includes(up) ? up : m;
    }
    if (init.headers !== undefined) this._headers = new Headers(init.headers);
    if (init.redirect !== undefined) {
      if (!["follow", "error", "manual"].includes(init.redirect)) throw new TypeError(`Invalid redirect mode: ${init.redirect}`);
      this._redirect = init.redirect;
    }
    if (init.mode !== undefined) {
      const m = requestEnum("mode", init.mode, ["same-origin", "no-cors", "cors", "navigate"]);
      if (m === "navigate") throw new TypeError("Request mode 'navigate' cannot be set");
      this._mode = m;
    }
    if (init.cache !== undefined) this._cache = requestEnum("cache", init.cache, ["default", "no-store", "reload", "no-cache", "force-cache", "only-if-cached"]);
    if (init.credentials !== undefined) this._credentials = requestEnum("credentials", init.credentials, ["omit", "same-origin", "include"]);
    if (init.window !== undefined && init.window !== null) throw new TypeError("RequestInit.window must be null");
    if (init.referrer !== undefined || init.referrerPolicy !== undefined || init.integrity !== undefined || init.keepalive !== undefined) {
      this._extra = requestExtra(this._extra, init);
    }
    if (init.duplex !== undefined) requestEnum("duplex", init.duplex, ["half"]);
    if (this._mode === "no-cors" && this._method !== "GET" && this._method !== "HEAD" && this._method !== "POST") {
      throw new TypeError(`Method ${this._method} is not allowed in no-cors mode`);
    }
    if (this._cache === "only-if-cached" && this._mode !== "same-origin") {
      throw new TypeError("Request cache mode 'only-if-cached' needs mode 'same-origin'");
    }
    if (init.signal !== undefined && init.signal !== null) {
      if (!(init.signal instanceof AbortSignal)) throw new TypeError("RequestInit.signal must be an AbortSignal");
      this._signal = followSignal(init.signal);
    }
    if (init.cf !== undefined) this.cf = init.cf;
    const hasBody = init.body !== undefined && init.body !== null;
    if ((hasBody || (src && src._body !== null)) && (this._method === "GET" || this._method === "HEAD")) {
      throw new TypeError("Request with GET/HEAD method cannot have body.");
    }
    if (hasBody) {
      const [body, type] = extractBody(init.body);
      this._body = body;
      if (type && !this._headers.has("content-type")) this._headers.set("content-type", type);
    } else if (src && src._body !== null) {
      if (src.bodyUsed || (src._body.stream !== null && src._body.stream.locked)) {
        throw new TypeError("Cannot construct a Request with a Request whose body is used or locked");
      }
      // the body moves here; the input keeps a used (disturbed and locked) one
      this._body = src._body;
      src._body = { source: new Uint8Array(0), stream: null };
      src._used = true;
    }
  }
  get url() { return this._url; }
  get method() { return this._method; }
  get headers() { return this._headers; }
  get redirect() { return this._redirect; }
  get signal() {
    if (!this._signal) {
      const ac = new AbortController();
      this._signal = ac.signal;
      // the incoming request's signal aborts when the client goes away mid-response
      if (this._rid !== undefined) requestAborters.set(this._rid, ac);
    }
    return this._signal;
  }
  get cache() { return this._cache; }
  get credentials() { return this._credentials; }
  get destination() { return ""; }
  get integrity() { return this._extra !== undefined ? this._extra.integrity : ""; }
  get keepalive() { return this._extra !== undefined ? this._extra.keepalive : false; }
  get mode() { return this._mode; }
  get referrer() { return this._extra !== undefined ? this._extra.referrer : "about:client"; }
  get referrerPolicy() { return this._extra !== undefined ? this._extra.referrerPolicy : ""; }
  get duplex() { return "half"; }
  clone() {
    const r = new Request(INTERNAL);
    r._url = this._url; r._method = this._method; r._headers = new Headers(this._headers); r._headers._guard = this._headers._guard;
    r._redirect = this._redirect; r._mode = this._mode; r._cache = this._cache; r._credentials = this._credentials; r.cf = this.cf;
    if (this._extra !== undefined) r._extra = this._extra;
    r._signal = followSignal(this.signal); // the clone's own signal, aborted with this one
    r._body = this._cloneBody();
    return r;
  }
  get [Symbol.toStringTag]() { return "Request"; }
  [INSPECT]() { return `Request { method: ${quoteString(this._method)}, url: ${quoteString(this._url)}, headers: ${inspect(this._headers)} }`; }
}

function requestEnum(field, value, allowed) {
  value = String(value);
  if (!allowed.includes(value)) throw new TypeError(`Invalid RequestInit.${field}: '${value}'`);
  return value;
}

const REFERRER_POLICIES = ["", "no-referrer", "no-referrer-when-downgrade", "same-origin", "origin", "strict-origin",
  "origin-when-cross-origin", "strict-origin-when-cross-origin", "unsafe-url"];

// The rarely given RequestInit members (no effect here, but kept and reported as the standard says).
function requestExtra(prev, init) {
  const x = prev !== undefined ? { ...prev } : { referrer: "about:client", referrerPolicy: "", integrity: "", keepalive: false };
  if (init.referrer !== undefined) {
    const ref = String(init.referrer);
    if (ref === "") x.referrer = "";
    else {
      let u;
      try { u = new URL(ref); } catch { throw new TypeError(`Invalid referrer URL: ${ref}`); }
      x.referrer = u.href;
    }
  }
  if (init.referrerPolicy !== undefined) x.referrerPolicy = requestEnum("referrerPolicy", init.referrerPolicy, REFERRER_POLICIES);
  if (init.integrity !== undefined) x.integrity = String(init.integrity);
  if (init.keepalive !== undefined) x.keepalive = !!init.keepalive;
  return x;
}

// A new signal that aborts when `signal` does (Fetch: a request's signal "follows" the one given).
function followSignal(signal) {
  return AbortSignal.any([signal]);
}

const requestAborters = new Map(); // rid -> AbortController of an incoming request whose signal was read

function incomingRequest(rid, method, url, headersFlat, body) {
  const r = new Request(INTERNAL);
  r._rid = rid;
  r._url = url;
  r._method = method;
  r._headers = headersFromFlat(headersFlat, "immutable");
  if (body !== null) r._body = { source: null, bin: body, stream: null }; // decoded only if read
  return r;
}

// ---------------------------------------------------------------- Response
// WebIDL `unsigned short`: NaN and infinities are 0, fractions truncate, then modulo 2^16.
function unsignedShort(v) {
  const n = Number(v);
  if (!Number.isFinite(n)) return 0;
  return ((Math.trunc(n) % 65536) + 65536) % 65536;
}

const NULL_BODY_STATUS = [101, 103, 204, 205, 304];
const REDIRECT_STATUS = [301, 302, 303, 307, 308];

class Response extends Body {
  _status = 200; _statusText = ""; _headers; _type = "default"; _url = ""; _redirected = false;
  constructor(body = null, init = {}) {
    super();
    if (body === INTERNAL) return;
    if (init === null || init === undefined) init = {};
    else if (typeof init !== "object" && typeof init !== "function") throw new TypeError("ResponseInit must be an object");
    if (init.status !== undefined) {
      const s = unsignedShort(init.status);
      if (s < 200 || s > 599) throw new RangeError(`Response status must be in the range 200 to 599, got ${init.status}`);
      this._status = s;
    }
    if (init.statusText !== undefined) {
      const t = String(init.statusText);
      if (/[^\t\x20-\x7e\x80-\xff]/.test(t)) throw new TypeError("Invalid statusText");
      this._statusText = t;
    }
    this._headers = init.headers instanceof Headers ? new Headers(init.headers) : new Headers(init.headers);
    if (body !== null && body !== undefined) {
      if (NULL_BODY_STATUS.includes(this._status)) throw new TypeError(`Response with null body status ${this._status} cannot have a body`);
      const [b, type] = extractBody(body);
      this._body = b;
      if (type && !this._headers.has("content-type")) this._headers._list.push(["content-type", type]);
    }
  }
  static json(data, init = {}) {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Value is not JSON serializable");
    const r = new Response(text, init);
    if (!init || !init.headers || !new Headers(init.headers).has("content-type")) r._headers.set("content-type", "application/json");
    return r;
  }
  static redirect(url, status = 302) {
    const parsed = new URL(String(url));
    status = unsignedShort(status);
    if (!REDIRECT_STATUS.includes(status)) throw new RangeError(`Invalid redirect status: ${status}`);
    const r = new Response(null, { status });
    r._headers.set("location", parsed.href);
    r._headers._guard = "immutable";
    return r;
  }
  static error() {
    const r = new Response(INTERNAL);
    r._status = 0; r._type = "error"; r._headers = new Headers(); r._headers._guard = "immutable";
    return r;
  }
  get status() { return this._status; }
  get statusText() { return this._statusText; }
  get ok() { return this._status >= 200 && this._status <= 299; }
  get headers() { return this._headers; }
  get type() { return this._type; }
  get url() { return this._url; }
  get redirected() { return this._redirected; }
  get webSocket() { return null; }
  clone() {
    const r = new Response(INTERNAL);
    r._status = this._status; r._statusText = this._statusText; r._headers = new Headers(this._headers); r._headers._guard = this._headers._guard;
    r._type = this._type; r._url = this._url; r._redirected = this._redirected;
    r._body = this._cloneBody();
    return r;
  }
  get [Symbol.toStringTag]() { return "Response"; }
  [INSPECT]() { return `Response { status: ${this._status}, statusText: ${quoteString(this._statusText)}, headers: ${inspect(this._headers)}, bodyUsed: ${this.bodyUsed} }`; }
}

expose("Headers", Headers);
expose("Blob", Blob);
expose("File", File);
expose("FormData", FormData);
// WebIDL puts the body mixin's members on Request.prototype and Response.prototype themselves.
for (const C of [Request, Response]) {
  for (const key of Object.getOwnPropertyNames(Body.prototype)) {
    if (key !== "constructor" && key[0] !== "_" && !Object.hasOwn(C.prototype, key)) {
      Object.defineProperty(C.prototype, key, Object.getOwnPropertyDescriptor(Body.prototype, key));
    }
  }
}
expose("Request", Request);
expose("Response", Response);
