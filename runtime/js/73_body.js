// The Fetch Standard's body mixin that Request and Response share: extracting a body from its init,
// reading it (text, json, bytes, arrayBuffer, blob, formData), cloning it.

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

// Request and Response made bare, their fields then set by ploy (clones, fetch results, incoming requests).
const INTERNAL = Symbol("internal");

// WebIDL puts the body mixin's members on Request.prototype and Response.prototype themselves.
function includeBody(C) {
  for (const key of Object.getOwnPropertyNames(Body.prototype)) {
    if (key !== "constructor" && key[0] !== "_" && !Object.hasOwn(C.prototype, key)) {
      Object.defineProperty(C.prototype, key, Object.getOwnPropertyDescriptor(Body.prototype, key));
    }
  }
}
