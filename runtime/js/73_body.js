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

// Internal state of Request and Response, under symbols so that instances have no own string-keyed
// properties (`Object.keys(new Response())` is [], as in Node and workerd). Values every instance
// starts with live on the prototype (internalDefaults) and become own only when they differ: each own
// property costs a shape transition per construction, and a hello worker builds two such objects.
const kBody = Symbol("body"); // null, or {source, bin, stream}: see extractBody
const kUsed = Symbol("used");
const kHeaders = Symbol("headers");

function internalDefaults(proto, entries) {
  for (const [k, value] of entries) Object.defineProperty(proto, k, { value, writable: true, configurable: true, enumerable: false });
}

// The body mixin's members, copied onto Request.prototype and Response.prototype (WebIDL puts a
// mixin's members on the interfaces themselves; the interfaces do not inherit from a Body class).
const BodyMixin = {
  get body() {
    const b = this[kBody];
    if (b === null) return null;
    if (b.stream === null) {
      b.stream = bytesStream(b.bin !== undefined ? latin1ToBytes(b.bin) : typeof b.source === "string" ? utf8Encode(b.source) : b.source);
      b.bin = undefined;
      b.source = null;
      // consumed before anyone looked: the stream was read to its end by a reader still holding it
      if (this[kUsed]) { b.stream._disturbed = true; b.stream.getReader(); }
    }
    return b.stream;
  },
  get bodyUsed() {
    const b = this[kBody];
    return this[kUsed] || (b !== null && b.stream !== null && b.stream._disturbed);
  },
  // The consumers hand consumeBody what to make of the body, rather than awaiting it (fewer jobs)
  text() {
    return consumeBody(this, bodyText);
  },
  json() {
    return consumeBody(this, bodyJSON);
  },
  bytes() {
    return consumeBody(this, bodyBytes);
  },
  async arrayBuffer() {
    const v = await this.bytes();
    return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength ? v.buffer : v.slice().buffer;
  },
  async blob() {
    return new Blob([await this.bytes()], { type: this.headers.get("content-type") || "" });
  },
  // The body is read whole first (so a stream's error is what rejects), then parsed by its type.
  formData() {
    try {
      const ct = this.headers.get("content-type") || "";
      return consumeBody(this, (v) => {
        if (/^multipart\/form-data/i.test(ct)) return parseMultipart(bodyBytes(v), ct);
        if (/^application\/x-www-form-urlencoded/i.test(ct)) {
          const fd = new FormData();
          for (const [k, val] of formDecode(bodyText(v, true))) fd.append(k, val);
          return fd;
        }
        throw new TypeError(`Could not parse content as FormData (content-type: ${ct || "none"})`);
      });
    } catch (err) {
      return Promise.reject(err);
    }
  },
};

// `keepBOM`: "UTF-8 decode without BOM" (the urlencoded parser's), else UTF-8 decode, which drops one
function bodyText(v, keepBOM) {
  let s;
  if (typeof v === "string") s = v;
  else if (v.bin !== undefined) s = v.bin.length ? utf8DecodeBin(v.bin, false) : "";
  else s = utf8Decode(v, false);
  return s.charCodeAt(0) === 0xfeff && keepBOM !== true ? s.slice(1) : s;
}

function bodyBytes(v) {
  if (v.bin !== undefined) return latin1ToBytes(v.bin);
  return typeof v === "string" ? utf8Encode(v) : v;
}

function bodyJSON(v) {
  return JSON.parse(bodyText(v));
}

// Reads the whole body and resolves with finish(v), v being a string (text), a Uint8Array, or {bin}
// (bytes as a latin-1 string). No promise is resolved with v itself, and a stream is read through
// read requests: a patched Object.prototype.then sees none of it (Fetch: "fully read").
function consumeBody(r, finish) {
  return new Promise((resolve, reject) => {
    const b = r[kBody];
    if (b === null) { resolve(finish(new Uint8Array(0))); return; } // a null body is never disturbed
    if (r.bodyUsed) throw new TypeError("Body has already been used");
    if (b.stream !== null && b.stream.locked) throw new TypeError("ReadableStream is locked");
    r[kUsed] = true;
    if (b.stream === null) { resolve(finish(b.bin !== undefined ? { bin: b.bin } : b.source)); return; }
    readAll(b.stream, (bytes) => { try { resolve(finish(bytes)); } catch (err) { reject(err); } }, reject);
  });
}

function cloneBody(r) {
  const b = r[kBody];
  if (b === null) return null;
  if (r.bodyUsed) throw new TypeError("Cannot clone a body that has already been used");
  if (b.stream === null) return { source: b.source, bin: b.bin, stream: null };
  const [s1, s2] = readableStreamTee(b.stream, true); // Fetch: a clone's chunks are copies
  b.stream = s1;
  return { source: null, stream: s2 };
}

function readAll(stream, onDone, onError) {
  const reader = new ReadableStreamDefaultReader(stream);
  const chunks = [];
  const step = (r) => {
    if (r.done) { reader.releaseLock(); onDone(concatBytes(chunks)); return; }
    if (!(r.value instanceof Uint8Array)) {
      const err = new TypeError("A body stream chunk must be a Uint8Array");
      reader.cancel(err).catch(() => {});
      onError(err);
      return;
    }
    chunks.push(r.value);
    readRequest(reader, step, onError);
  };
  readRequest(reader, step, onError);
}

// Request and Response made bare, their fields then set by ploy (clones, fetch results, incoming requests).
const INTERNAL = Symbol("internal");

function includeBody(C) {
  for (const key of Object.getOwnPropertyNames(BodyMixin)) {
    if (!Object.hasOwn(C.prototype, key)) {
      const desc = Object.getOwnPropertyDescriptor(BodyMixin, key);
      desc.enumerable = false; // expose() makes them enumerable, as WebIDL's members are
      Object.defineProperty(C.prototype, key, desc);
    }
  }
  internalDefaults(C.prototype, [[kBody, null], [kUsed, false]]);
}
