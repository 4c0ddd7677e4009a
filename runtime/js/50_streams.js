// ReadableStream (default and byte streams, tee), WritableStream, TransformStream (WHATWG Streams),
// queuing strategies, TextEncoderStream/TextDecoderStream. The web-platform-tests of
// tests/runtime/js/wpt/ hold these to the standard's algorithms, down to the order promises settle in.

// WebIDL argument checks: an optional `object` (null is not one), a dictionary (undefined or null is
// an empty one), and a dictionary member that must be a callback function.
function checkObject(v, what) {
  if (v === null || (typeof v !== "object" && typeof v !== "function")) throw new TypeError(`${what} must be an object`);
}
function checkDict(v, what) {
  if (v !== undefined && v !== null && typeof v !== "object" && typeof v !== "function") throw new TypeError(`${what} must be an object`);
}
function checkCallbacks(dict, what, names) {
  for (const n of names) {
    if (dict[n] !== undefined && typeof dict[n] !== "function") throw new TypeError(`${what}.${n} must be a function`);
  }
}

// A dictionary member that must be a callback function, read once.
function sourceCallback(dict, name) {
  const f = dict[name];
  if (f !== undefined && typeof f !== "function") throw new TypeError(`The underlying source's ${name} must be a function`);
  return f;
}

// QueuingStrategy as WebIDL converts it: highWaterMark, then size, each read once; a size that is
// not a function fails before a bad highWaterMark does (its type is checked by the conversion).
function strategyDict(strategy) {
  checkDict(strategy, "The queuing strategy");
  if (!strategy) return { highWaterMark: undefined, size: undefined };
  const highWaterMark = strategy.highWaterMark === undefined ? undefined : Number(strategy.highWaterMark);
  const size = strategy.size;
  if (size !== undefined && typeof size !== "function") throw new TypeError("size must be a function");
  return { highWaterMark, size };
}

function extractHWM(strategy, dflt) {
  if (strategy.highWaterMark === undefined) return dflt;
  const h = strategy.highWaterMark;
  if (Number.isNaN(h) || h < 0) throw new RangeError("Invalid highWaterMark");
  return h;
}

function extractSize(strategy) {
  const size = strategy.size;
  if (size === undefined) return () => 1;
  return (chunk) => size(chunk); // called as a function, not as a method of the strategy
}

function deferred() {
  let resolve, reject;
  const promise = new Promise((a, b) => { resolve = a; reject = b; });
  const d = {
    promise, settled: false,
    resolve(v) { d.settled = true; resolve(v); },
    reject(e) { d.settled = true; reject(e); },
  };
  return d;
}

// WebIDL's "a promise resolved with" as the standard's reference implementation has it: a new
// promise, so a promise given (a start() that returns one) settles it a tick later, the order the
// web-platform-tests expect (TransformStream's start, then a cancel made right after it).
function promiseResolvedWith(v) { return new Promise((resolve) => resolve(v)); }

// Promise.prototype.then as it was before worker code could patch it: what a stream does when a
// stream is made, teed or piped must not call a patched then (the standard's "react to a promise").
const promiseThen = Promise.prototype.then;
function uponPromise(p, onFulfilled, onRejected) { return Reflect.apply(promiseThen, p, [onFulfilled, onRejected]); }
const ignore = () => {};
function markHandled(p) { uponPromise(p, undefined, ignore); return p; }

// The strategies' size functions are one function each (per realm), named "size".
// Methods of an object literal: named "size", with no prototype and not constructors (Streams: the
// strategies' size functions are built from steps, as such functions are).
const countSize = { size() { return 1; } }.size;
const byteLengthSize = { size(chunk) { return chunk.byteLength; } }.size;
function strategyHWM(init) {
  if (init === undefined) throw new TypeError("A queuing strategy needs an init dictionary");
  checkDict(init, "The queuing strategy init");
  if (init === null || init.highWaterMark === undefined) throw new TypeError("highWaterMark is required");
  return +init.highWaterMark;
}
class CountQueuingStrategy {
  #hwm;
  constructor(init) { this.#hwm = strategyHWM(init); }
  get highWaterMark() { return this.#hwm; }
  get size() { return countSize; }
}
class ByteLengthQueuingStrategy {
  #hwm;
  constructor(init) { this.#hwm = strategyHWM(init); }
  get highWaterMark() { return this.#hwm; }
  get size() { return byteLengthSize; }
}

// ---------------------------------------------------------------- ReadableStream
const RS_KEY = Symbol("rs");
// The controllers' internal steps, under symbols: their prototypes show only the standard's members.
const kPullSteps = Symbol("pullSteps"), kCancelSteps = Symbol("cancelSteps"), kPullIfNeeded = Symbol("pullIfNeeded"), kShouldPull = Symbol("shouldPull");

class ReadableStreamDefaultController {
  constructor(key, stream, source, hwm, size) {
    if (key !== RS_KEY) throw new TypeError("Illegal constructor");
    this._stream = stream;
    this._source = source;
    this._queue = []; // [chunk, size]
    this._queueSize = 0;
    this._hwm = hwm;
    this._size = size;
    this._started = false;
    this._pulling = false;
    this._pullAgain = false;
    this._onPulled = null; // called once when the pull under way has finished (a body sent to the host)
    this._closeRequested = false;
  }
  get desiredSize() {
    const s = this._stream._state;
    if (s === "errored") return null;
    if (s === "closed") return 0;
    return this._hwm - this._queueSize;
  }
  close() {
    if (!rsdcCanCloseOrEnqueue(this)) throw new TypeError("The stream is not in a state that permits close");
    rsdcClose(this);
  }
  enqueue(chunk) {
    if (!rsdcCanCloseOrEnqueue(this)) throw new TypeError("The stream is not in a state that permits enqueue");
    rsdcEnqueue(this, chunk);
  }
  error(e) { rsdcError(this, e); }
  [kShouldPull]() {
    const stream = this._stream;
    if (!this._started || this._closeRequested || stream._state !== "readable") return false;
    if (stream._reader && stream._reader._readRequests.length > 0) return true;
    return this.desiredSize > 0;
  }
  [kPullIfNeeded]() {
    if (!this[kShouldPull]()) return;
    if (this._pulling) { this._pullAgain = true; return; }
    this._pulling = true;
    let p;
    try {
      p = Promise.resolve(this._source.pull ? Reflect.apply(this._source.pull, this._source._self, [this]) : undefined);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(() => {
      this._pulling = false;
      if (this._pullAgain) { this._pullAgain = false; this[kPullIfNeeded](); }
      const f = this._onPulled;
      if (f !== null) { this._onPulled = null; f(); }
    }, (err) => rsdcError(this, err));
  }
  [kPullSteps](readRequest) {
    if (this._queue.length) {
      const [chunk, size] = this._queue.shift();
      this._queueSize -= size;
      if (this._queueSize < 0) this._queueSize = 0;
      if (this._closeRequested && this._queue.length === 0) this._stream._close();
      else this[kPullIfNeeded]();
      readRequest.resolve({ value: chunk, done: false });
    } else {
      this._stream._reader._readRequests.push(readRequest);
      this[kPullIfNeeded]();
    }
  }
  [kCancelSteps](reason) {
    this._queue = [];
    this._queueSize = 0;
    const src = this._source;
    try {
      return Promise.resolve(src.cancel ? Reflect.apply(src.cancel, src._self, [reason]) : undefined).then(() => undefined);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

// The standard's ReadableStreamDefaultController abstract operations (what the public methods and
// TransformStream use; worker code may patch the prototype's methods).
function rsdcCanCloseOrEnqueue(c) { return !c._closeRequested && c._stream._state === "readable"; }
function rsdcClose(c) {
  if (!rsdcCanCloseOrEnqueue(c)) return;
  c._closeRequested = true;
  if (c._queue.length === 0) c._stream._close();
}
function rsdcEnqueue(c, chunk) {
  if (!rsdcCanCloseOrEnqueue(c)) return;
  const stream = c._stream;
  if (stream._reader && stream._reader._readRequests.length) {
    stream._reader._readRequests.shift().resolve({ value: chunk, done: false });
  } else {
    let size;
    try {
      const sizeFn = c._size;
      size = sizeFn(chunk); // a function, not a method of the controller
      if (!(size >= 0) || size === Infinity) throw new RangeError("Invalid chunk size");
    } catch (err) {
      rsdcError(c, err);
      throw err;
    }
    c._queue.push([chunk, size]);
    c._queueSize += size;
  }
  c[kPullIfNeeded]();
}
function rsdcError(c, e) {
  if (c._stream._state !== "readable") return;
  c._queue = [];
  c._queueSize = 0;
  c._stream._error(e);
}

const kCreate = Symbol("create");
function setUpReadableStreamController(stream, c, source) {
  stream._controller = c;
  const startResult = source.start ? Reflect.apply(source.start, source._self, [c]) : undefined;
  uponPromise(promiseResolvedWith(startResult), () => {
    c._started = true;
    c[kPullIfNeeded]();
  }, (err) => c.error(err));
}
function createReadableStream(pull, cancel, bytes) {
  return new ReadableStream(kCreate, { pull, cancel, bytes });
}

class ReadableStream {
  constructor(underlyingSource, strategy) {
    this._state = "readable";
    this._reader = null;
    this._disturbed = false;
    this._storedError = undefined;
    if (underlyingSource === kCreate) {
      // CreateReadableStream / CreateReadableByteStream (tee's branches): algorithms, not a
      // dictionary, so nothing is read from a (maybe patched) Object.prototype
      const a = strategy;
      const source = { _self: undefined, cancel: a.cancel, pull: a.pull, start: undefined };
      setUpReadableStreamController(this, a.bytes
        ? new ReadableByteStreamController(RS_KEY, this, source, 0, undefined, undefined)
        : new ReadableStreamDefaultController(RS_KEY, this, source, 1, countSize), source);
      return;
    }
    strategy = strategyDict(strategy); // the strategy argument is converted before the source's members are read
    if (underlyingSource !== undefined) checkObject(underlyingSource, "The underlying source");
    const src = underlyingSource === undefined ? {} : underlyingSource;
    // the UnderlyingSource dictionary as WebIDL converts it: each member read once, in name order
    const autoAllocate = src.autoAllocateChunkSize;
    const autoAllocateChunkSize = autoAllocate === undefined ? undefined : +autoAllocate;
    const source = { _self: src, cancel: sourceCallback(src, "cancel"), pull: undefined, start: undefined };
    source.pull = sourceCallback(src, "pull");
    source.start = sourceCallback(src, "start");
    const rawType = src.type;
    const type = rawType === undefined ? undefined : String(rawType); // a WebIDL enum: converted to a string
    const isBytes = type === "bytes";
    if (type !== undefined && !isBytes) throw new TypeError(`Invalid type: ${type}`);
    if (isBytes) {
      if (autoAllocateChunkSize !== undefined && !(autoAllocateChunkSize >= 1)) throw new TypeError("autoAllocateChunkSize must be positive");
      if (strategy.size !== undefined) throw new RangeError("A byte stream's strategy cannot have a size");
    }
    const hwm = extractHWM(strategy, isBytes ? 0 : 1);
    const size = isBytes ? (c) => c.byteLength : extractSize(strategy);
    const c = isBytes
      ? new ReadableByteStreamController(RS_KEY, this, source, hwm, size, autoAllocateChunkSize === undefined ? undefined : Math.trunc(autoAllocateChunkSize))
      : new ReadableStreamDefaultController(RS_KEY, this, source, hwm, size);
    setUpReadableStreamController(this, c, source);
  }

  get locked() { return this._reader !== null; }

  cancel(reason) {
    if (this._reader) return Promise.reject(new TypeError("Cannot cancel a locked stream"));
    return this._cancel(reason);
  }

  _cancel(reason) {
    this._disturbed = true;
    if (this._state === "closed") return Promise.resolve();
    if (this._state === "errored") return Promise.reject(this._storedError);
    this._close();
    const r = this._reader;
    if (r instanceof ReadableStreamBYOBReader) {
      // a cancel ends pending BYOB reads with no view (ReadableStreamCancel)
      const reqs = r._readIntoRequests;
      r._readIntoRequests = [];
      for (const req of reqs) req.close(undefined);
    }
    return this._controller[kCancelSteps](reason);
  }

  // (a BYOB reader's pending reads are ended by its controller, which has their views)
  _close() {
    if (this._state !== "readable") return;
    this._state = "closed";
    const r = this._reader;
    if (r) {
      if (r._readRequests) {
        const reqs = r._readRequests;
        r._readRequests = [];
        for (const req of reqs) req.resolve({ value: undefined, done: true });
      }
      r._closed.resolve();
    }
  }

  _error(e) {
    if (this._state !== "readable") return;
    this._state = "errored";
    this._storedError = e;
    const r = this._reader;
    if (r) {
      // closed first, then the pending reads (ReadableStreamError)
      r._closed.reject(e);
      markHandled(r._closed.promise);
      if (r._readRequests) {
        const reqs = r._readRequests;
        r._readRequests = [];
        for (const req of reqs) req.reject(e);
      } else {
        const reqs = r._readIntoRequests;
        r._readIntoRequests = [];
        for (const req of reqs) req.error(e);
      }
    }
  }

  getReader(options) {
    checkDict(options, "getReader's options");
    if (options && options.mode !== undefined) {
      if (String(options.mode) === "byob") return new ReadableStreamBYOBReader(this);
      throw new TypeError(`Invalid reader mode: ${options.mode}`);
    }
    return new ReadableStreamDefaultReader(this);
  }

  pipeThrough(transform, options = undefined) {
    if (!isReadableStream(this)) throw new TypeError("pipeThrough called on a non-ReadableStream");
    // WebIDL: ReadableWritablePair's members in order, each checked as it is read, then the options
    checkObject(transform, "pipeThrough's transform");
    const readable = transform.readable;
    if (!isReadableStream(readable)) throw new TypeError("pipeThrough: transform.readable must be a ReadableStream");
    const writable = transform.writable;
    if (!isWritableStream(writable)) throw new TypeError("pipeThrough: transform.writable must be a WritableStream");
    const opts = pipeOptions(options);
    if (this.locked) throw new TypeError("ReadableStream is locked");
    if (writable.locked) throw new TypeError("WritableStream is locked");
    markHandled(readableStreamPipeTo(this, writable, opts));
    return readable;
  }

  pipeTo(dest, options = undefined) {
    try {
      if (!isReadableStream(this)) throw new TypeError("pipeTo called on a non-ReadableStream");
      if (!isWritableStream(dest)) throw new TypeError("pipeTo requires a WritableStream");
      const opts = pipeOptions(options);
      if (this.locked) throw new TypeError("ReadableStream is locked");
      if (dest.locked) throw new TypeError("WritableStream is locked");
      return readableStreamPipeTo(this, dest, opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  tee() {
    if (!isReadableStream(this)) throw new TypeError("tee called on a non-ReadableStream");
    return readableStreamTee(this, false);
  }

  values(options) {
    checkDict(options, "values() options");
    const preventCancel = !!(options && options.preventCancel);
    const it = Object.create(ReadableStreamAsyncIteratorPrototype);
    // the reader made directly, not through a getReader() someone may have patched
    asyncIterators.set(it, { reader: new ReadableStreamDefaultReader(this), preventCancel, finished: false, ongoing: null });
    return it;
  }
  [Symbol.asyncIterator](options) { return this.values(options); }

  static from(iterable) {
    const it = iterable[Symbol.asyncIterator] ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
    checkObject(it, "The iterator");
    return new ReadableStream({
      async pull(c) {
        const r = await it.next();
        checkObject(r, "An iterator result");
        if (r.done) c.close();
        else c.enqueue(await r.value);
      },
      async cancel(reason) {
        const ret = it.return;
        if (ret === undefined || ret === null) return;
        const r = await ret.call(it, reason);
        checkObject(r, "The iterator's return() result");
      },
    }, { highWaterMark: 0 });
  }

  get [Symbol.toStringTag]() { return "ReadableStream"; }
}

// %ReadableStreamAsyncIteratorPrototype%: inherits %AsyncIteratorPrototype% ([Symbol.asyncIterator]).
// An iterator's state lives in asyncIterators (its only own properties are none, as WebIDL's).
const asyncIterators = new WeakMap();

function asyncIteratorNextSteps(st) {
  if (st.finished) return Promise.resolve({ value: undefined, done: true });
  const reader = st.reader;
  return new Promise((resolve, reject) => {
    readRequest(reader, (r) => {
      if (r.done) { st.finished = true; Reflect.apply(readerReleaseLock, reader, []); resolve({ value: undefined, done: true }); }
      else resolve({ value: r.value, done: false });
    }, (err) => { st.finished = true; Reflect.apply(readerReleaseLock, reader, []); reject(err); });
  });
}

function asyncIteratorReturnSteps(st, value) {
  if (st.finished) return Promise.resolve({ value, done: true });
  st.finished = true;
  const reader = st.reader;
  if (!st.preventCancel) {
    const p = reader._stream._cancel(value);
    Reflect.apply(readerReleaseLock, reader, []);
    return p.then(() => ({ value, done: true }));
  }
  Reflect.apply(readerReleaseLock, reader, []);
  return Promise.resolve({ value, done: true });
}

// WebIDL async iterators: next() and return() each wait for the call before them to settle
function asyncIteratorChain(it, steps) {
  const st = asyncIterators.get(it);
  if (st === undefined) return Promise.reject(new TypeError("Not a ReadableStream async iterator"));
  const prev = st.ongoing;
  const p = prev ? prev.then(() => steps(st), () => steps(st)) : steps(st);
  st.ongoing = p;
  const clear = () => { if (st.ongoing === p) st.ongoing = null; };
  p.then(clear, clear);
  return p;
}

const ReadableStreamAsyncIteratorPrototype = Object.create(
  Object.getPrototypeOf(Object.getPrototypeOf(async function* () {}).prototype),
  {
    next: {
      value: function next() { return asyncIteratorChain(this, asyncIteratorNextSteps); },
      writable: true, configurable: true, enumerable: true,
    },
    return: {
      // a method definition: named "return" (a function expression here would be named "value")
      value: { return(value) { return asyncIteratorChain(this, (st) => asyncIteratorReturnSteps(st, value)); } }.return,
      writable: true, configurable: true, enumerable: true,
    },
  },
);

class ReadableStreamDefaultReader {
  constructor(stream) {
    if (!(stream instanceof ReadableStream)) throw new TypeError("ReadableStreamDefaultReader needs a ReadableStream");
    if (stream._reader) throw new TypeError("ReadableStream is locked");
    this._stream = stream;
    this._readRequests = [];
    this._closed = deferred();
    stream._reader = this;
    if (stream._state === "closed") this._closed.resolve();
    else if (stream._state === "errored") { this._closed.reject(stream._storedError); markHandled(this._closed.promise); }
  }
  get closed() { return this._closed.promise; }
  read() {
    const stream = this._stream;
    if (!stream) return Promise.reject(new TypeError("This reader has been released"));
    stream._disturbed = true;
    if (stream._state === "closed") return Promise.resolve({ value: undefined, done: true });
    if (stream._state === "errored") return Promise.reject(stream._storedError);
    const d = deferred();
    stream._controller[kPullSteps](d);
    return d.promise;
  }
  cancel(reason) {
    if (!this._stream) return Promise.reject(new TypeError("This reader has been released"));
    return this._stream._cancel(reason);
  }
  releaseLock() {
    const stream = this._stream;
    if (!stream) return;
    const err = new TypeError("Reader was released");
    if (stream._controller instanceof ReadableByteStreamController) stream._controller._release();
    for (const req of this._readRequests) req.reject(err);
    this._readRequests = [];
    if (stream._state === "readable") this._closed.reject(err);
    else this._closed = { promise: Promise.reject(err) };
    markHandled(this._closed.promise);
    stream._reader = null;
    this._stream = null;
  }
}

// ---------------------------------------------------------------- byte streams
// The Streams Standard's ReadableByteStreamController: a queue of byte ranges, and pull-into
// descriptors for reads into caller-given views (BYOB reads, and default reads when
// autoAllocateChunkSize is set), which the source fills through byobRequest.respond() or by enqueue.
// Read requests are {resolve(result), reject(e)} (as the default controller's); read-into requests
// are {chunk(view), close(view), error(e)}.
const BYOB_KEY = Symbol("byob");

function transferBuffer(buffer) {
  if (buffer.detached) throw new TypeError("The ArrayBuffer is detached");
  return buffer.transfer();
}

const kEnqueue = Symbol("enqueue");

// The standard's ReadableByteStreamController abstract operations the public methods and tee use.
function rbscGetBYOBRequest(c) {
  if (c._byobRequest === null && c._pendingPullIntos.length) {
    const first = c._pendingPullIntos[0];
    const view = new Uint8Array(first.buffer, first.byteOffset + first.bytesFilled, first.byteLength - first.bytesFilled);
    c._byobRequest = new ReadableStreamBYOBRequest(BYOB_KEY, c, view);
  }
  return c._byobRequest;
}
function rbscClose(c) {
  if (c._closeRequested || c._stream._state !== "readable") return;
  if (c._queueSize > 0) { c._closeRequested = true; return; }
  if (c._pendingPullIntos.length) {
    const first = c._pendingPullIntos[0];
    if (first.bytesFilled % first.elementSize !== 0) {
      const e = new TypeError("Insufficient bytes to fill elements in the given buffer");
      rbscError(c, e);
      throw e;
    }
  }
  c._closeRequested = true;
  c._stream._close();
}
function rbscEnqueue(c, chunk) {
  if (c._closeRequested || c._stream._state !== "readable") return;
  c[kEnqueue](chunk);
}
function rbscError(c, e) {
  if (c._stream._state !== "readable") return;
  c._clearPendingPullIntos();
  c._queue = [];
  c._queueSize = 0;
  c._stream._error(e);
}

class ReadableByteStreamController {
  constructor(key, stream, source, hwm, size, autoAllocateChunkSize) {
    if (key !== RS_KEY) throw new TypeError("Illegal constructor");
    this._stream = stream;
    this._source = source;
    this._queue = []; // {buffer, byteOffset, byteLength}
    this._queueSize = 0;
    this._hwm = hwm;
    this._started = false;
    this._pulling = false;
    this._pullAgain = false;
    this._closeRequested = false;
    this._pendingPullIntos = [];
    this._byobRequest = null;
    this._autoAllocateChunkSize = autoAllocateChunkSize;
  }
  get byobRequest() { return rbscGetBYOBRequest(this); }
  get desiredSize() {
    const s = this._stream._state;
    if (s === "errored") return null;
    if (s === "closed") return 0;
    return this._hwm - this._queueSize;
  }
  close() {
    if (this._closeRequested) throw new TypeError("The stream is already closing");
    if (this._stream._state !== "readable") throw new TypeError("The stream is not in a state that permits close");
    rbscClose(this);
  }
  enqueue(chunk) {
    if (!ArrayBuffer.isView(chunk)) throw new TypeError("A byte stream chunk must be an ArrayBufferView");
    if (chunk.byteLength === 0) throw new TypeError("A byte stream chunk must not be empty");
    if (chunk.buffer.byteLength === 0) throw new TypeError("A byte stream chunk's buffer must not be empty");
    if (this._closeRequested) throw new TypeError("The stream is closing");
    if (this._stream._state !== "readable") throw new TypeError("The stream is not in a state that permits enqueue");
    rbscEnqueue(this, chunk);
  }
  error(e) { rbscError(this, e); }

  // --- internals ---
  [kEnqueue](chunk) {
    const byteOffset = chunk.byteOffset, byteLength = chunk.byteLength;
    const buffer = transferBuffer(chunk.buffer);
    const stream = this._stream;
    if (this._pendingPullIntos.length) {
      const first = this._pendingPullIntos[0];
      if (first.buffer.detached) throw new TypeError("The BYOB request's buffer is detached");
      this._invalidateBYOBRequest();
      first.buffer = transferBuffer(first.buffer);
      if (first.readerType === "none") this._enqueueDetachedPullInto(first);
    }
    const reader = stream._reader;
    if (reader instanceof ReadableStreamDefaultReader) {
      this._processReadRequestsUsingQueue();
      if (reader._readRequests.length === 0) this._enqueueChunk(buffer, byteOffset, byteLength);
      else {
        if (this._pendingPullIntos.length) this._pendingPullIntos.shift();
        const req = reader._readRequests.shift();
        req.resolve({ value: new Uint8Array(buffer, byteOffset, byteLength), done: false });
      }
    } else if (reader instanceof ReadableStreamBYOBReader) {
      this._enqueueChunk(buffer, byteOffset, byteLength);
      for (const d of this._processPullIntosUsingQueue()) this._commit(d);
    } else this._enqueueChunk(buffer, byteOffset, byteLength);
    this[kPullIfNeeded]();
  }
  _enqueueChunk(buffer, byteOffset, byteLength) {
    this._queue.push({ buffer, byteOffset, byteLength });
    this._queueSize += byteLength;
  }
  _enqueueDetachedPullInto(d) {
    if (d.bytesFilled > 0) this._enqueueChunk(d.buffer.slice(d.byteOffset, d.byteOffset + d.bytesFilled), 0, d.bytesFilled);
    this._pendingPullIntos.shift();
  }
  _invalidateBYOBRequest() {
    const r = this._byobRequest;
    if (r === null) return;
    r._controller = undefined;
    r._view = null;
    this._byobRequest = null;
  }
  _clearPendingPullIntos() {
    this._invalidateBYOBRequest();
    this._pendingPullIntos = [];
  }
  [kShouldPull]() {
    const stream = this._stream;
    if (stream._state !== "readable" || this._closeRequested || !this._started) return false;
    const r = stream._reader;
    if (r instanceof ReadableStreamDefaultReader && r._readRequests.length > 0) return true;
    if (r instanceof ReadableStreamBYOBReader && r._readIntoRequests.length > 0) return true;
    return this.desiredSize > 0;
  }
  [kPullIfNeeded]() {
    if (!this[kShouldPull]()) return;
    if (this._pulling) { this._pullAgain = true; return; }
    this._pulling = true;
    let p;
    try {
      p = Promise.resolve(this._source.pull ? Reflect.apply(this._source.pull, this._source._self, [this]) : undefined);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(() => {
      this._pulling = false;
      if (this._pullAgain) { this._pullAgain = false; this[kPullIfNeeded](); }
    }, (err) => this.error(err));
  }
  _handleQueueDrain() {
    if (this._queueSize === 0 && this._closeRequested) this._stream._close();
    else this[kPullIfNeeded]();
  }
  _fillReadRequestFromQueue(req) {
    const e = this._queue.shift();
    this._queueSize -= e.byteLength;
    this._handleQueueDrain();
    req.resolve({ value: new Uint8Array(e.buffer, e.byteOffset, e.byteLength), done: false });
  }
  _processReadRequestsUsingQueue() {
    const reader = this._stream._reader;
    while (reader._readRequests.length) {
      if (this._queueSize === 0) return;
      this._fillReadRequestFromQueue(reader._readRequests.shift());
    }
  }
  _fillPullIntoFromQueue(d) {
    const maxBytesToCopy = Math.min(this._queueSize, d.byteLength - d.bytesFilled);
    const maxBytesFilled = d.bytesFilled + maxBytesToCopy;
    let remaining = maxBytesToCopy;
    let ready = false;
    const maxAligned = maxBytesFilled - (maxBytesFilled % d.elementSize);
    if (maxAligned >= d.minimumFill) { remaining = maxAligned - d.bytesFilled; ready = true; }
    while (remaining > 0) {
      const head = this._queue[0];
      const n = Math.min(remaining, head.byteLength);
      new Uint8Array(d.buffer, d.byteOffset + d.bytesFilled, n).set(new Uint8Array(head.buffer, head.byteOffset, n));
      if (head.byteLength === n) this._queue.shift();
      else { head.byteOffset += n; head.byteLength -= n; }
      this._queueSize -= n;
      d.bytesFilled += n;
      remaining -= n;
    }
    return ready;
  }
  _processPullIntosUsingQueue() {
    const filled = [];
    while (this._pendingPullIntos.length) {
      if (this._queueSize === 0) break;
      const d = this._pendingPullIntos[0];
      if (this._fillPullIntoFromQueue(d)) { this._pendingPullIntos.shift(); filled.push(d); }
    }
    return filled;
  }
  _convert(d) {
    return new d.viewConstructor(d.buffer, d.byteOffset, d.bytesFilled / d.elementSize);
  }
  _commit(d) {
    const stream = this._stream;
    const done = stream._state === "closed";
    const view = this._convert(d);
    const r = stream._reader;
    if (d.readerType === "default") {
      if (r instanceof ReadableStreamDefaultReader && r._readRequests.length) r._readRequests.shift().resolve({ value: view, done });
    } else if (r instanceof ReadableStreamBYOBReader && r._readIntoRequests.length) {
      const req = r._readIntoRequests.shift();
      if (done) req.close(view); else req.chunk(view);
    }
  }
  // a default reader's read (PullSteps)
  [kPullSteps](req) {
    if (this._queueSize > 0) { this._fillReadRequestFromQueue(req); return; }
    const n = this._autoAllocateChunkSize;
    if (n !== undefined) {
      let buffer;
      try { buffer = new ArrayBuffer(n); } catch (e) { req.reject(e); return; }
      this._pendingPullIntos.push({ buffer, bufferByteLength: n, byteOffset: 0, byteLength: n, bytesFilled: 0, minimumFill: 1,
        elementSize: 1, viewConstructor: Uint8Array, readerType: "default" });
    }
    this._stream._reader._readRequests.push(req);
    this[kPullIfNeeded]();
  }
  _pullInto(view, min, req) {
    const stream = this._stream;
    const ctor = view.constructor === DataView ? DataView : view.constructor;
    const elementSize = ctor === DataView ? 1 : ctor.BYTES_PER_ELEMENT;
    const byteOffset = view.byteOffset, byteLength = view.byteLength;
    let buffer;
    try { buffer = transferBuffer(view.buffer); } catch (e) { req.error(e); return; }
    const d = { buffer, bufferByteLength: buffer.byteLength, byteOffset, byteLength, bytesFilled: 0,
      minimumFill: min * elementSize, elementSize, viewConstructor: ctor, readerType: "byob" };
    if (this._pendingPullIntos.length) {
      this._pendingPullIntos.push(d);
      stream._reader._readIntoRequests.push(req);
      return;
    }
    if (stream._state === "closed") { req.close(new ctor(buffer, byteOffset, 0)); return; }
    if (this._queueSize > 0) {
      if (this._fillPullIntoFromQueue(d)) {
        const filled = this._convert(d);
        this._handleQueueDrain();
        req.chunk(filled);
        return;
      }
      if (this._closeRequested) {
        const e = new TypeError("Insufficient bytes to fill elements in the given buffer");
        this.error(e);
        req.error(e);
        return;
      }
    }
    this._pendingPullIntos.push(d);
    stream._reader._readIntoRequests.push(req);
    this[kPullIfNeeded]();
  }
  _respond(bytesWritten) {
    const first = this._pendingPullIntos[0];
    if (this._stream._state === "closed") {
      if (bytesWritten !== 0) throw new TypeError("bytesWritten must be 0 once the stream is closed");
    } else {
      if (bytesWritten === 0) throw new TypeError("bytesWritten must be more than 0 while the stream is readable");
      if (first.bytesFilled + bytesWritten > first.byteLength) throw new RangeError("bytesWritten out of range");
    }
    first.buffer = transferBuffer(first.buffer);
    this._respondInternal(bytesWritten);
  }
  _respondWithNewView(view) {
    const first = this._pendingPullIntos[0];
    if (this._stream._state === "closed") {
      if (view.byteLength !== 0) throw new TypeError("The view must be empty once the stream is closed");
    } else if (view.byteLength === 0) throw new TypeError("The view must not be empty while the stream is readable");
    if (first.byteOffset + first.bytesFilled !== view.byteOffset) throw new RangeError("The view's offset does not match the request's");
    if (first.bufferByteLength !== view.buffer.byteLength) throw new RangeError("The view's buffer length does not match the request's");
    if (first.bytesFilled + view.byteLength > first.byteLength) throw new RangeError("The view is too long");
    const n = view.byteLength;
    first.buffer = transferBuffer(view.buffer);
    this._respondInternal(n);
  }
  _respondInternal(bytesWritten) {
    const first = this._pendingPullIntos[0];
    this._invalidateBYOBRequest();
    if (this._stream._state === "closed") {
      if (first.readerType === "none") this._pendingPullIntos.shift();
      const r = this._stream._reader;
      if (r instanceof ReadableStreamBYOBReader) while (r._readIntoRequests.length) this._commit(this._pendingPullIntos.shift());
    } else {
      first.bytesFilled += bytesWritten;
      if (first.readerType === "none") {
        this._enqueueDetachedPullInto(first);
        for (const d of this._processPullIntosUsingQueue()) this._commit(d);
      } else if (first.bytesFilled >= first.minimumFill) {
        this._pendingPullIntos.shift();
        const rem = first.bytesFilled % first.elementSize;
        if (rem > 0) {
          const end = first.byteOffset + first.bytesFilled;
          this._enqueueChunk(first.buffer.slice(end - rem, end), 0, rem);
          first.bytesFilled -= rem;
        }
        const filled = this._processPullIntosUsingQueue();
        this._commit(first);
        for (const d of filled) this._commit(d);
      }
    }
    this[kPullIfNeeded]();
  }
  _release() {
    if (this._pendingPullIntos.length) {
      const first = this._pendingPullIntos[0];
      first.readerType = "none";
      this._pendingPullIntos = [first];
    }
  }
  [kCancelSteps](reason) {
    this._clearPendingPullIntos();
    this._queue = [];
    this._queueSize = 0;
    const src = this._source;
    try {
      return Promise.resolve(src.cancel ? Reflect.apply(src.cancel, src._self, [reason]) : undefined).then(() => undefined);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

class ReadableStreamBYOBRequest {
  constructor(key, controller, view) {
    if (key !== BYOB_KEY) throw new TypeError("Illegal constructor");
    this._controller = controller;
    this._view = view;
  }
  get view() { return this._view; }
  respond(bytesWritten) {
    if (this._controller === undefined) throw new TypeError("This BYOB request is no longer valid");
    const n = Number(bytesWritten);
    if (!Number.isFinite(n) || n < 0) throw new TypeError("bytesWritten must be a non-negative number");
    if (this._view.buffer.detached) throw new TypeError("The BYOB request's buffer is detached");
    this._controller._respond(Math.trunc(n));
  }
  respondWithNewView(view) {
    if (!ArrayBuffer.isView(view)) throw new TypeError("respondWithNewView needs an ArrayBufferView");
    if (this._controller === undefined) throw new TypeError("This BYOB request is no longer valid");
    if (view.buffer.detached) throw new TypeError("The view's buffer is detached");
    this._controller._respondWithNewView(view);
  }
}

class ReadableStreamBYOBReader {
  constructor(stream) {
    if (!(stream instanceof ReadableStream)) throw new TypeError("ReadableStreamBYOBReader needs a ReadableStream");
    if (stream._reader) throw new TypeError("ReadableStream is locked");
    if (!(stream._controller instanceof ReadableByteStreamController)) throw new TypeError("BYOB readers need a byte stream (type: 'bytes')");
    this._stream = stream;
    this._readIntoRequests = [];
    this._closed = deferred();
    stream._reader = this;
    if (stream._state === "closed") this._closed.resolve();
    else if (stream._state === "errored") { this._closed.reject(stream._storedError); markHandled(this._closed.promise); }
  }
  get closed() { return this._closed.promise; }
  read(view, options = undefined) {
    if (!ArrayBuffer.isView(view)) return Promise.reject(new TypeError("read(view) needs an ArrayBufferView"));
    if (view.byteLength === 0) return Promise.reject(new TypeError("read(view) needs a non-empty view"));
    if (view.buffer.byteLength === 0) return Promise.reject(new TypeError("read(view) needs a non-empty buffer"));
    if (view.buffer.detached) return Promise.reject(new TypeError("read(view): the view's buffer is detached"));
    try { checkDict(options, "read options"); } catch (e) { return Promise.reject(e); }
    let min = 1;
    if (options !== undefined && options !== null && options.min !== undefined) {
      min = Number(options.min);
      if (!Number.isFinite(min) || min < 0 || min > Number.MAX_SAFE_INTEGER) return Promise.reject(new TypeError("read(view): min out of range"));
      min = Math.trunc(min);
    }
    if (min === 0) return Promise.reject(new TypeError("read(view): min must be positive"));
    if (view instanceof DataView ? min > view.byteLength : min > view.length) return Promise.reject(new RangeError("read(view): min is larger than the view"));
    const stream = this._stream;
    if (!stream) return Promise.reject(new TypeError("This reader has been released"));
    stream._disturbed = true;
    const d = deferred();
    const req = {
      chunk: (v) => d.resolve({ value: v, done: false }),
      close: (v) => d.resolve({ value: v, done: true }),
      error: (e) => d.reject(e),
    };
    if (stream._state === "errored") req.error(stream._storedError);
    else stream._controller._pullInto(view, min, req);
    return d.promise;
  }
  cancel(reason) {
    if (!this._stream) return Promise.reject(new TypeError("This reader has been released"));
    return this._stream._cancel(reason);
  }
  releaseLock() {
    const stream = this._stream;
    if (!stream) return;
    const err = new TypeError("Reader was released");
    if (stream._state === "readable") this._closed.reject(err);
    else this._closed = { promise: Promise.reject(err) };
    markHandled(this._closed.promise);
    stream._controller._release();
    stream._reader = null;
    this._stream = null;
    const reqs = this._readIntoRequests;
    this._readIntoRequests = [];
    for (const req of reqs) req.error(err);
  }
  get [Symbol.toStringTag]() { return "ReadableStreamBYOBReader"; }
}

// ---------------------------------------------------------------- tee
// The Streams Standard's ReadableStreamTee: ReadableStreamDefaultTee, and ReadableByteStreamTee
// for a byte stream (which reads into a branch's BYOB request when it has one). A read's chunk is
// handed on in a microtask, so an error of the source reaches both branches before a chunk read
// after it.

// ReadableStreamDefaultReaderRead / ReadableStreamBYOBReaderRead with this file's requests
// ({resolve(result), reject(e)} and {chunk(view), close(view), error(e)})
function defaultReaderRead(reader, req) {
  const stream = reader._stream;
  stream._disturbed = true;
  if (stream._state === "closed") req.resolve({ value: undefined, done: true });
  else if (stream._state === "errored") req.reject(stream._storedError);
  else stream._controller[kPullSteps](req);
}
function byobReaderRead(reader, view, req) {
  const stream = reader._stream;
  stream._disturbed = true;
  if (stream._state === "errored") req.error(stream._storedError);
  else stream._controller._pullInto(view, 1, req);
}
function cloneAsUint8Array(view) {
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function readableStreamTee(stream, cloneForBranch2) {
  if (stream._controller instanceof ReadableByteStreamController) return readableByteStreamTee(stream);
  return readableStreamDefaultTee(stream, cloneForBranch2);
}

function readableStreamDefaultTee(stream, cloneForBranch2) {
  const reader = new ReadableStreamDefaultReader(stream);
  let reading = false, readAgain = false, canceled1 = false, canceled2 = false, reason1, reason2;
  const cancelDone = deferred();
  const chunkSteps = (chunk) => {
    readAgain = false;
    let chunk2 = chunk;
    if (!canceled2 && cloneForBranch2) {
      try { chunk2 = structuredCloneImpl(chunk, new Map()); } catch (cloneError) {
        rsdcError(branch1._controller, cloneError);
        rsdcError(branch2._controller, cloneError);
        cancelDone.resolve(stream._cancel(cloneError));
        return;
      }
    }
    if (!canceled1) rsdcEnqueue(branch1._controller, chunk);
    if (!canceled2) rsdcEnqueue(branch2._controller, chunk2);
    reading = false;
    if (readAgain) pull();
  };
  const readReq = {
    resolve(r) {
      if (!r.done) { const chunk = r.value; queueMicrotask(() => chunkSteps(chunk)); return; }
      reading = false;
      if (!canceled1) rsdcClose(branch1._controller);
      if (!canceled2) rsdcClose(branch2._controller);
      if (!canceled1 || !canceled2) cancelDone.resolve(undefined);
    },
    reject() { reading = false; },
  };
  const pull = () => {
    if (reading) { readAgain = true; return; }
    reading = true;
    defaultReaderRead(reader, readReq);
  };
  const branch1 = createReadableStream(pull, (reason) => {
    canceled1 = true;
    reason1 = reason;
    if (canceled2) cancelDone.resolve(stream._cancel([reason1, reason2]));
    return cancelDone.promise;
  }, false);
  const branch2 = createReadableStream(pull, (reason) => {
    canceled2 = true;
    reason2 = reason;
    if (canceled1) cancelDone.resolve(stream._cancel([reason1, reason2]));
    return cancelDone.promise;
  }, false);
  uponPromise(reader._closed.promise, undefined, (r) => {
    rsdcError(branch1._controller, r);
    rsdcError(branch2._controller, r);
    if (!canceled1 || !canceled2) cancelDone.resolve(undefined);
  });
  return [branch1, branch2];
}

function readableByteStreamTee(stream) {
  let reader = new ReadableStreamDefaultReader(stream);
  let readAgain1 = false, readAgain2 = false, reading = false, canceled1 = false, canceled2 = false, reason1, reason2;
  let branch1, branch2;
  const cancelDone = deferred();
  const forwardReaderError = (thisReader) => {
    uponPromise(thisReader._closed.promise, undefined, (r) => {
      if (thisReader !== reader) return;
      rbscError(branch1._controller, r);
      rbscError(branch2._controller, r);
      if (!canceled1 || !canceled2) cancelDone.resolve(undefined);
    });
  };
  const cloneFailed = (cloneError) => {
    rbscError(branch1._controller, cloneError);
    rbscError(branch2._controller, cloneError);
    cancelDone.resolve(stream._cancel(cloneError));
  };
  const readDone = () => {
    reading = false;
    if (readAgain1) pull1();
    else if (readAgain2) pull2();
  };
  const pullWithDefaultReader = () => {
    if (reader instanceof ReadableStreamBYOBReader) {
      Reflect.apply(byobReaderReleaseLock, reader, []);
      reader = new ReadableStreamDefaultReader(stream);
      forwardReaderError(reader);
    }
    const chunkSteps = (chunk) => {
      readAgain1 = false;
      readAgain2 = false;
      let chunk2 = chunk;
      if (!canceled1 && !canceled2) {
        try { chunk2 = cloneAsUint8Array(chunk); } catch (cloneError) { cloneFailed(cloneError); return; }
      }
      if (!canceled1) rbscEnqueue(branch1._controller, chunk);
      if (!canceled2) rbscEnqueue(branch2._controller, chunk2);
      readDone();
    };
    defaultReaderRead(reader, {
      resolve(r) {
        if (!r.done) { const chunk = r.value; queueMicrotask(() => chunkSteps(chunk)); return; }
        reading = false;
        const c1 = branch1._controller, c2 = branch2._controller;
        if (!canceled1) rbscClose(c1);
        if (!canceled2) rbscClose(c2);
        if (c1._pendingPullIntos.length > 0) c1._respond(0);
        if (c2._pendingPullIntos.length > 0) c2._respond(0);
        if (!canceled1 || !canceled2) cancelDone.resolve(undefined);
      },
      reject() { reading = false; },
    });
  };
  const pullWithBYOBReader = (view, forBranch2) => {
    if (reader instanceof ReadableStreamDefaultReader) {
      Reflect.apply(readerReleaseLock, reader, []);
      reader = new ReadableStreamBYOBReader(stream);
      forwardReaderError(reader);
    }
    const byobBranch = forBranch2 ? branch2 : branch1;
    const otherBranch = forBranch2 ? branch1 : branch2;
    const chunkSteps = (chunk) => {
      readAgain1 = false;
      readAgain2 = false;
      const byobCanceled = forBranch2 ? canceled2 : canceled1;
      const otherCanceled = forBranch2 ? canceled1 : canceled2;
      if (!otherCanceled) {
        let cloned;
        try { cloned = cloneAsUint8Array(chunk); } catch (cloneError) { cloneFailed(cloneError); return; }
        if (!byobCanceled) byobBranch._controller._respondWithNewView(chunk);
        rbscEnqueue(otherBranch._controller, cloned);
      } else if (!byobCanceled) byobBranch._controller._respondWithNewView(chunk);
      readDone();
    };
    byobReaderRead(reader, view, {
      chunk(chunk) { queueMicrotask(() => chunkSteps(chunk)); },
      close(chunk) {
        reading = false;
        const byobCanceled = forBranch2 ? canceled2 : canceled1;
        const otherCanceled = forBranch2 ? canceled1 : canceled2;
        if (!byobCanceled) rbscClose(byobBranch._controller);
        if (!otherCanceled) rbscClose(otherBranch._controller);
        if (chunk !== undefined) {
          if (!byobCanceled) byobBranch._controller._respondWithNewView(chunk);
          if (!otherCanceled && otherBranch._controller._pendingPullIntos.length > 0) otherBranch._controller._respond(0);
        }
        if (!byobCanceled || !otherCanceled) cancelDone.resolve(undefined);
      },
      error() { reading = false; },
    });
  };
  const pull1 = () => {
    if (reading) { readAgain1 = true; return; }
    reading = true;
    const byobRequest = rbscGetBYOBRequest(branch1._controller);
    if (byobRequest === null) pullWithDefaultReader();
    else pullWithBYOBReader(byobRequest._view, false);
  };
  const pull2 = () => {
    if (reading) { readAgain2 = true; return; }
    reading = true;
    const byobRequest = rbscGetBYOBRequest(branch2._controller);
    if (byobRequest === null) pullWithDefaultReader();
    else pullWithBYOBReader(byobRequest._view, true);
  };
  branch1 = createReadableStream(pull1, (reason) => {
    canceled1 = true;
    reason1 = reason;
    if (canceled2) cancelDone.resolve(stream._cancel([reason1, reason2]));
    return cancelDone.promise;
  }, true);
  branch2 = createReadableStream(pull2, (reason) => {
    canceled2 = true;
    reason2 = reason;
    if (canceled1) cancelDone.resolve(stream._cancel([reason1, reason2]));
    return cancelDone.promise;
  }, true);
  forwardReaderError(reader);
  return [branch1, branch2];
}

// ---------------------------------------------------------------- WritableStream
const WS_KEY = Symbol("ws");
class WritableStreamDefaultController {
  constructor(key, stream) {
    if (key !== WS_KEY) throw new TypeError("Illegal constructor");
    this._stream = stream; this._abortController = new AbortController();
  }
  get signal() { return this._abortController.signal; }
  error(e) { if (this._stream._state === "writable") this._stream._startErroring(e); }
}

class WritableStream {
  constructor(underlyingSink = undefined, strategy = undefined) {
    strategy = strategyDict(strategy); // converted before the sink's members are read
    if (underlyingSink !== undefined) checkObject(underlyingSink, "The underlying sink");
    const sink = underlyingSink === undefined ? {} : underlyingSink;
    checkCallbacks(sink, "The underlying sink", ["start", "write", "close", "abort"]);
    if (sink.type !== undefined) throw new RangeError("WritableStream: an underlying sink's type must be undefined");
    this._sink = sink;
    this._state = "writable"; // writable | erroring | errored | closed
    this._storedError = undefined;
    this._writer = null;
    this._queue = []; // {chunk, size, d} | {close: true, d}
    this._queueSize = 0;
    this._hwm = extractHWM(strategy, 1);
    this._size = extractSize(strategy);
    this._inFlight = false;
    this._closeRequested = false;
    this._started = false;
    this._pendingAbort = null;
    this._controller = new WritableStreamDefaultController(WS_KEY, this);
    uponPromise(promiseResolvedWith(sink.start ? Reflect.apply(sink.start, sink, [this._controller]) : undefined), () => {
      this._started = true;
      this._advance();
    }, (err) => { this._started = true; this._startErroring(err); this._finishErroring(); });
  }
  get locked() { return this._writer !== null; }
  getWriter() { return new WritableStreamDefaultWriter(this); }
  abort(reason) {
    if (this._writer) return Promise.reject(new TypeError("WritableStream is locked"));
    return this._abort(reason);
  }
  close() {
    if (this._writer) return Promise.reject(new TypeError("WritableStream is locked"));
    return this._close();
  }
  _desiredSize() {
    if (this._state === "errored" || this._state === "erroring") return null;
    if (this._state === "closed") return 0;
    return this._hwm - this._queueSize;
  }
  _updateBackpressure() {
    const w = this._writer;
    if (!w || this._state !== "writable" || this._closeRequested) return;
    const bp = this._desiredSize() <= 0;
    if (bp && !w._readyPending) { w._ready = deferred(); w._readyPending = true; }
    else if (!bp && w._readyPending) { w._readyPending = false; w._ready.resolve(); }
  }
  // Streams: WritableStreamDefaultWriterWrite. The chunk's size comes first, and the state is looked
  // at after it: size() may have closed, aborted or errored the stream, or released `writer`.
  _write(chunk, writer) {
    let size;
    const sizeFn = this._size; // called as a function, not as a method of the stream
    try {
      size = sizeFn(chunk);
    } catch (err) {
      if (this._state === "writable") this._startErroring(err);
      size = 1;
    }
    if (writer._stream !== this) return Promise.reject(new TypeError("This writer has been released"));
    const state = this._state;
    if (state === "errored") return Promise.reject(this._storedError);
    if (this._closeRequested || state === "closed") return Promise.reject(new TypeError("The stream is closing or closed"));
    if (state === "erroring") return Promise.reject(this._storedError);
    const d = deferred();
    if (!(size >= 0) || size === Infinity) {
      // the write request stays (with no size) and fails as the stream errors
      this._queue.push({ chunk, size: 0, d });
      this._startErroring(new RangeError("A chunk's size must be a finite, non-negative number"));
      return d.promise;
    }
    this._queue.push({ chunk, size, d });
    this._queueSize += size;
    this._updateBackpressure();
    this._advance();
    return d.promise;
  }
  _close() {
    if (this._state === "closed" || this._state === "errored" || this._closeRequested) return Promise.reject(new TypeError("The stream is closed or closing"));
    const d = deferred();
    this._closeRequested = true;
    this._queue.push({ close: true, d });
    if (this._writer && this._writer._readyPending) { this._writer._readyPending = false; this._writer._ready.resolve(); }
    this._advance();
    return d.promise;
  }
  _abort(reason) {
    if (this._state === "closed" || this._state === "errored") return Promise.resolve();
    this._controller._abortController.abort(reason);
    if (this._state === "closed" || this._state === "errored") return Promise.resolve();
    if (this._pendingAbort) return this._pendingAbort.d.promise;
    const d = deferred();
    const wasErroring = this._state === "erroring";
    this._pendingAbort = { d, reason: wasErroring ? undefined : reason, wasErroring };
    // finishes (and calls the sink's abort) once no write is in flight and start() has settled
    if (!wasErroring) this._startErroring(reason);
    return d.promise;
  }
  _startErroring(reason) {
    if (this._state !== "writable") return;
    this._state = "erroring";
    this._storedError = reason;
    const w = this._writer;
    if (w && w._readyPending) { w._readyPending = false; w._ready.reject(reason); markHandled(w._ready.promise); }
    else if (w) { w._ready = { promise: markHandled(Promise.reject(reason)) }; }
    if (!this._inFlight && this._started) this._finishErroring();
  }
  // Streams: WritableStreamFinishErroring. Queued writes fail now; a queued close and the writer's
  // closed fail once the sink's abort (if one was asked for) has settled.
  _finishErroring() {
    if (this._state !== "erroring") return;
    this._state = "errored";
    const err = this._storedError;
    const closes = [];
    for (const item of this._queue) {
      if (item.close) closes.push(item);
      else item.d.reject(err);
    }
    this._queue = [];
    this._queueSize = 0;
    const rejectCloseAndClosed = () => {
      for (const item of closes) item.d.reject(err);
      if (this._writer) { this._writer._closedD.reject(err); markHandled(this._writer._closedD.promise); }
    };
    const pa = this._pendingAbort;
    if (!pa) { rejectCloseAndClosed(); return; }
    this._pendingAbort = null;
    // an abort of a stream already erroring does not reach the sink: it fails with the stream's error
    if (pa.wasErroring) { pa.d.reject(err); rejectCloseAndClosed(); return; }
    let p;
    try { p = Promise.resolve(this._sink.abort ? Reflect.apply(this._sink.abort, this._sink, [pa.reason]) : undefined); }
    catch (e) { p = Promise.reject(e); }
    p.then(() => { pa.d.resolve(); rejectCloseAndClosed(); }, (e) => { pa.d.reject(e); rejectCloseAndClosed(); });
  }
  _advance() {
    if (!this._started || this._inFlight) return;
    if (this._state === "erroring") { this._finishErroring(); return; }
    if (this._state !== "writable" || !this._queue.length) return;
    const item = this._queue[0];
    this._inFlight = true;
    const sink = this._sink;
    let p;
    try {
      p = item.close
        ? Promise.resolve(sink.close ? Reflect.apply(sink.close, sink, []) : undefined)
        : Promise.resolve(sink.write ? Reflect.apply(sink.write, sink, [item.chunk, this._controller]) : undefined);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(() => {
      this._inFlight = false;
      this._queue.shift();
      if (item.close) {
        // an abort that came while the close was in flight resolves; the close wins (Streams: "finish
        // in-flight close")
        if (this._state === "erroring") this._storedError = undefined;
        item.d.resolve(); // the close's promise first, then a pending abort's (Streams: finish in-flight close)
        const pa = this._pendingAbort;
        if (pa) { this._pendingAbort = null; pa.d.resolve(); }
        this._state = "closed";
        if (this._writer) this._writer._closedD.resolve();
        return;
      }
      this._queueSize -= item.size;
      if (this._queueSize < 0) this._queueSize = 0; // floating point (Streams: DequeueValue)
      item.d.resolve();
      if (this._state === "erroring") { this._finishErroring(); return; }
      this._updateBackpressure();
      this._advance();
    }, (err) => {
      this._inFlight = false;
      this._queue.shift();
      item.d.reject(err);
      if (item.close && this._pendingAbort) { const pa = this._pendingAbort; this._pendingAbort = null; pa.d.reject(err); }
      if (this._state === "writable") this._startErroring(err);
      this._finishErroring();
    });
  }
  get [Symbol.toStringTag]() { return "WritableStream"; }
}

class WritableStreamDefaultWriter {
  constructor(stream) {
    if (!(stream instanceof WritableStream)) throw new TypeError("WritableStreamDefaultWriter needs a WritableStream");
    if (stream._writer) throw new TypeError("WritableStream is locked");
    this._stream = stream;
    stream._writer = this;
    this._closedD = deferred();
    this._ready = deferred();
    this._readyPending = false;
    if (stream._state === "writable") {
      if (stream._desiredSize() <= 0 && !stream._closeRequested) this._readyPending = true;
      else this._ready.resolve();
    } else if (stream._state === "closed") {
      this._ready.resolve();
      this._closedD.resolve();
    } else {
      this._ready.reject(stream._storedError); markHandled(this._ready.promise);
      if (stream._state === "errored") { this._closedD.reject(stream._storedError); markHandled(this._closedD.promise); }
    }
  }
  get closed() { return this._closedD.promise; }
  get ready() { return this._ready.promise; }
  get desiredSize() {
    if (!this._stream) throw new TypeError("This writer has been released");
    return this._stream._desiredSize();
  }
  write(chunk) {
    if (!this._stream) return Promise.reject(new TypeError("This writer has been released"));
    return this._stream._write(chunk, this);
  }
  close() {
    if (!this._stream) return Promise.reject(new TypeError("This writer has been released"));
    return this._stream._close();
  }
  abort(reason) {
    if (!this._stream) return Promise.reject(new TypeError("This writer has been released"));
    return this._stream._abort(reason);
  }
  releaseLock() {
    const s = this._stream;
    if (!s) return;
    const err = new TypeError("Writer was released");
    if (this._readyPending) { this._readyPending = false; this._ready.reject(err); markHandled(this._ready.promise); }
    else this._ready = { promise: markHandled(Promise.reject(err)) };
    // Streams: "ensure closed promise rejected": the pending one if it is, else a new rejected one
    if (this._closedD.settled === false) { this._closedD.reject(err); markHandled(this._closedD.promise); }
    else this._closedD = { promise: markHandled(Promise.reject(err)), settled: true };
    s._writer = null;
    this._stream = null;
  }
}

// ---------------------------------------------------------------- TransformStream
// The Streams Standard's TransformStream, its abstract operations as functions (the newer text with
// transformer.cancel and the controller's [[finishPromise]]: close, abort and cancel run flush or
// cancel once, and whichever comes later waits for that).
const TS_KEY = Symbol("ts");
class TransformStreamDefaultController {
  constructor(key, ts) {
    if (key !== TS_KEY) throw new TypeError("Illegal constructor");
    this._ts = ts;
    this._transform = undefined;
    this._flush = undefined;
    this._cancel = undefined;
    this._finishPromise = undefined; // a deferred once close, abort or cancel has begun
  }
  get desiredSize() { return this._ts._readable._controller.desiredSize; }
  enqueue(chunk) { tsControllerEnqueue(this, chunk); }
  error(reason) { tsError(this._ts, reason); }
  terminate() {
    const ts = this._ts;
    rsdcClose(ts._readable._controller);
    tsErrorWritableAndUnblockWrite(ts, new TypeError("TransformStream terminated"));
  }
}

// A transformer's member that must be a callback function, read once.
function transformerCallback(t, name) {
  const f = t[name];
  if (f !== undefined && typeof f !== "function") throw new TypeError(`The transformer's ${name} must be a function`);
  return f;
}

class TransformStream {
  constructor(transformer = undefined, writableStrategy = undefined, readableStrategy = undefined) {
    // WebIDL converts the arguments first: the strategies, then the Transformer dictionary (its
    // members read once, in name order)
    const ws = strategyDict(writableStrategy);
    const rs = strategyDict(readableStrategy);
    if (transformer !== undefined) checkObject(transformer, "The transformer");
    const t = transformer === undefined ? {} : transformer;
    const cancel = transformerCallback(t, "cancel");
    const flush = transformerCallback(t, "flush");
    const readableType = t.readableType;
    const start = transformerCallback(t, "start");
    const transform = transformerCallback(t, "transform");
    const writableType = t.writableType;
    if (readableType !== undefined) throw new RangeError("TransformStream: readableType must be undefined");
    if (writableType !== undefined) throw new RangeError("TransformStream: writableType must be undefined");
    const readableHWM = extractHWM(rs, 0);
    const readableSize = extractSize(rs);
    const writableHWM = extractHWM(ws, 1);
    const writableSize = extractSize(ws);
    const startD = deferred();
    const startAlgorithm = () => startD.promise;
    this._writable = new WritableStream({
      start: startAlgorithm,
      write: (chunk) => tsSinkWrite(this, chunk),
      abort: (reason) => tsSinkAbort(this, reason),
      close: () => tsSinkClose(this),
    }, { highWaterMark: writableHWM, size: writableSize });
    this._readable = new ReadableStream({
      start: startAlgorithm,
      pull: () => tsSourcePull(this),
      cancel: (reason) => tsSourceCancel(this, reason),
    }, { highWaterMark: readableHWM, size: readableSize });
    this._backpressure = undefined;
    this._bpChange = null;
    tsSetBackpressure(this, true);
    // SetUpTransformStreamDefaultControllerFromTransformer
    const controller = new TransformStreamDefaultController(TS_KEY, this);
    this._controller = controller;
    controller._transform = transform !== undefined
      ? (chunk) => Reflect.apply(transform, t, [chunk, controller])
      : (chunk) => { tsControllerEnqueue(controller, chunk); };
    if (flush !== undefined) controller._flush = () => Reflect.apply(flush, t, [controller]);
    if (cancel !== undefined) controller._cancel = (reason) => Reflect.apply(cancel, t, [reason]);
    if (start !== undefined) startD.resolve(Reflect.apply(start, t, [controller]));
    else startD.resolve(undefined);
  }
  get readable() { return this._readable; }
  get writable() { return this._writable; }
  get [Symbol.toStringTag]() { return "TransformStream"; }
}

// A promise for what an algorithm returns (undefined: a missing one), or for what it throws.
function tsInvoke(algorithm, arg) {
  if (algorithm === undefined) return Promise.resolve(undefined);
  try { return promiseResolvedWith(algorithm(arg)); } catch (err) { return Promise.reject(err); }
}
function tsClearAlgorithms(c) {
  c._transform = undefined;
  c._flush = undefined;
  c._cancel = undefined;
}
function tsSetBackpressure(ts, bp) {
  if (ts._bpChange !== null) ts._bpChange.resolve(undefined);
  ts._bpChange = deferred();
  ts._backpressure = bp;
}
function tsError(ts, e) {
  rsdcError(ts._readable._controller, e);
  tsErrorWritableAndUnblockWrite(ts, e);
}
function tsErrorWritableAndUnblockWrite(ts, e) {
  tsClearAlgorithms(ts._controller);
  const w = ts._writable;
  if (w._state === "writable") w._startErroring(e); // WritableStreamDefaultControllerErrorIfNeeded
  tsUnblockWrite(ts);
}
function tsUnblockWrite(ts) {
  if (ts._backpressure) tsSetBackpressure(ts, false);
}
function tsControllerEnqueue(c, chunk) {
  const ts = c._ts;
  const rc = ts._readable._controller;
  if (!rsdcCanCloseOrEnqueue(rc)) throw new TypeError("The readable side is not in a state that permits enqueue");
  try {
    rsdcEnqueue(rc, chunk);
  } catch (err) {
    tsErrorWritableAndUnblockWrite(ts, err);
    throw ts._readable._storedError;
  }
  const backpressure = !rc[kShouldPull](); // ReadableStreamDefaultControllerHasBackpressure
  if (backpressure && ts._backpressure !== true) tsSetBackpressure(ts, true);
}
function tsPerformTransform(c, chunk) {
  return tsInvoke(c._transform, chunk).then(undefined, (r) => { tsError(c._ts, r); throw r; });
}
function tsSinkWrite(ts, chunk) {
  const c = ts._controller;
  if (ts._backpressure) {
    return ts._bpChange.promise.then(() => {
      const w = ts._writable;
      if (w._state === "erroring") throw w._storedError;
      return tsPerformTransform(c, chunk);
    });
  }
  return tsPerformTransform(c, chunk);
}
function tsSinkAbort(ts, reason) {
  const c = ts._controller;
  if (c._finishPromise !== undefined) return c._finishPromise.promise;
  const readable = ts._readable;
  const d = c._finishPromise = deferred();
  const cancelPromise = tsInvoke(c._cancel, reason);
  tsClearAlgorithms(c);
  cancelPromise.then(() => {
    if (readable._state === "errored") d.reject(readable._storedError);
    else { rsdcError(readable._controller, reason); d.resolve(undefined); }
  }, (r) => { rsdcError(readable._controller, r); d.reject(r); });
  return d.promise;
}
function tsSinkClose(ts) {
  const c = ts._controller;
  if (c._finishPromise !== undefined) return c._finishPromise.promise;
  const readable = ts._readable;
  const d = c._finishPromise = deferred();
  const flushPromise = tsInvoke(c._flush);
  tsClearAlgorithms(c);
  flushPromise.then(() => {
    if (readable._state === "errored") d.reject(readable._storedError);
    else { rsdcClose(readable._controller); d.resolve(undefined); }
  }, (r) => { rsdcError(readable._controller, r); d.reject(r); });
  return d.promise;
}
function tsSourcePull(ts) {
  tsSetBackpressure(ts, false);
  return ts._bpChange.promise;
}
function tsSourceCancel(ts, reason) {
  const c = ts._controller;
  if (c._finishPromise !== undefined) return c._finishPromise.promise;
  const w = ts._writable;
  const d = c._finishPromise = deferred();
  const cancelPromise = tsInvoke(c._cancel, reason);
  tsClearAlgorithms(c);
  cancelPromise.then(() => {
    if (w._state === "errored") { d.reject(w._storedError); return; }
    if (w._state === "writable") w._startErroring(reason);
    tsUnblockWrite(ts);
    d.resolve(undefined);
  }, (r) => {
    if (w._state === "writable") w._startErroring(r);
    tsUnblockWrite(ts);
    d.reject(r);
  });
  return d.promise;
}

// GenericTransformStream classes: a readable/writable pair, not TransformStreams themselves.
class TextEncoderStream {
  #ts;
  constructor() {
    const enc = new TextEncoder();
    let pendingHigh = "";
    this.#ts = new TransformStream({
      transform(chunk, c) {
        let s = pendingHigh + String(chunk);
        pendingHigh = "";
        const last = s.charCodeAt(s.length - 1);
        if (last >= 0xd800 && last <= 0xdbff) { pendingHigh = s[s.length - 1]; s = s.slice(0, -1); }
        if (s) c.enqueue(enc.encode(s));
      },
      flush(c) { if (pendingHigh) c.enqueue(new Uint8Array([0xef, 0xbf, 0xbd])); },
    });
  }
  get encoding() { return "utf-8"; }
  get readable() { return this.#ts.readable; }
  get writable() { return this.#ts.writable; }
  get [Symbol.toStringTag]() { return "TextEncoderStream"; }
}

class TextDecoderStream {
  #ts;
  #dec;
  constructor(label = "utf-8", options = {}) {
    const dec = this.#dec = new TextDecoder(label, options);
    this.#ts = new TransformStream({
      transform(chunk, c) {
        if (chunk === undefined) throw new TypeError("TextDecoderStream chunks must be BufferSources"); // decode() would read it as empty
        const s = dec.decode(chunk, { stream: true });
        if (s) c.enqueue(s);
      },
      flush(c) { const s = dec.decode(); if (s) c.enqueue(s); },
    });
  }
  get encoding() { return this.#dec.encoding; }
  get fatal() { return this.#dec.fatal; }
  get ignoreBOM() { return this.#dec.ignoreBOM; }
  get readable() { return this.#ts.readable; }
  get writable() { return this.#ts.writable; }
  get [Symbol.toStringTag]() { return "TextDecoderStream"; }
}

// A read through a read request, its steps in a microtask (as tee's are): no promise is resolved
// with the result object, so a patched Object.prototype.then cannot see or change it.
function readRequest(reader, onResult, onError) {
  const stream = reader._stream;
  stream._disturbed = true;
  if (stream._state === "closed") { queueMicrotask(() => onResult({ value: undefined, done: true })); return; }
  if (stream._state === "errored") { const e = stream._storedError; queueMicrotask(() => onError(e)); return; }
  stream._controller[kPullSteps]({ resolve: (r) => queueMicrotask(() => onResult(r)), reject: onError });
}

// Brand checks: a real stream has its state as an own field (an object made from the prototype has not).
function isReadableStream(x) { return x instanceof ReadableStream && Object.hasOwn(x, "_state"); }
function isWritableStream(x) { return x instanceof WritableStream && Object.hasOwn(x, "_state"); }

// StreamPipeOptions as WebIDL converts it: each member read once, in order.
function pipeOptions(options) {
  checkDict(options, "The pipe options");
  if (options === undefined || options === null) return { preventAbort: false, preventCancel: false, preventClose: false, signal: undefined };
  const preventAbort = !!options.preventAbort;
  const preventCancel = !!options.preventCancel;
  const preventClose = !!options.preventClose;
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError("The pipe options' signal must be an AbortSignal");
  return { preventAbort, preventCancel, preventClose, signal };
}

// The Streams Standard's ReadableStreamPipeTo, on this file's internals: reads go through read
// requests (not promises of result objects) and nothing resolves a promise with an object, so a
// patched Object.prototype.then sees nothing.
function readableStreamPipeTo(source, dest, { preventAbort, preventCancel, preventClose, signal }) {
  const reader = new ReadableStreamDefaultReader(source);
  const writer = new WritableStreamDefaultWriter(dest);
  source._disturbed = true;
  let shuttingDown = false;
  let currentWrite = Promise.resolve();
  const result = deferred();
  let abortAlgorithm;

  const closeQueuedOrInFlight = () => dest._closeRequested;
  const waitForWritesToFinish = () => {
    const old = currentWrite;
    return uponPromise(currentWrite, () => (old !== currentWrite ? waitForWritesToFinish() : undefined));
  };
  const finalize = (isError, error) => {
    writer.releaseLock();
    reader.releaseLock();
    if (signal !== undefined) signal._algorithms.delete(abortAlgorithm);
    if (isError) result.reject(error);
    else result.resolve(undefined);
  };
  const shutdownWithAction = (action, originalIsError, originalError) => {
    if (shuttingDown) return;
    shuttingDown = true;
    const doTheRest = () => {
      let p;
      try { p = action(); } catch (err) { p = Promise.reject(err); }
      uponPromise(p, () => finalize(originalIsError, originalError), (newError) => finalize(true, newError));
    };
    if (dest._state === "writable" && !closeQueuedOrInFlight()) uponPromise(waitForWritesToFinish(), doTheRest);
    else doTheRest();
  };
  const shutdown = (isError, error) => {
    if (shuttingDown) return;
    shuttingDown = true;
    if (dest._state === "writable" && !closeQueuedOrInFlight()) uponPromise(waitForWritesToFinish(), () => finalize(isError, error));
    else finalize(isError, error);
  };

  if (signal !== undefined) {
    abortAlgorithm = () => {
      const error = signal.reason;
      const actions = [];
      if (!preventAbort) actions.push(() => (dest._state === "writable" ? dest._abort(error) : Promise.resolve()));
      if (!preventCancel) actions.push(() => (source._state === "readable" ? source._cancel(error) : Promise.resolve()));
      shutdownWithAction(() => allSettledFirstError(actions.map((a) => a())), true, error);
    };
    if (signal.aborted) { abortAlgorithm(); return result.promise; }
    signal._algorithms.add(abortAlgorithm);
  }

  const pipeStep = () => new Promise((resolveStep, rejectStep) => {
    uponPromise(writer._ready.promise, () => {
      if (shuttingDown) { resolveStep(true); return; }
      if (source._state === "closed") { resolveStep(true); return; }
      if (source._state === "errored") { rejectStep(source._storedError); return; }
      source._controller[kPullSteps]({
        resolve(r) {
          if (r.done) { resolveStep(true); return; }
          // in a microtask: an enqueue() that fulfils this read must not run the sink's write itself
          queueMicrotask(() => {
            currentWrite = uponPromise(dest._write(r.value, writer), undefined, ignore);
            resolveStep(false);
          });
        },
        reject: rejectStep,
      });
    }, rejectStep);
  });
  const pipeLoop = () => {
    if (shuttingDown) return;
    uponPromise(pipeStep(), (done) => { if (!done) pipeLoop(); }, ignore);
  };

  // errors must be propagated forward
  const onSourceError = (storedError) => {
    if (!preventAbort) shutdownWithAction(() => dest._abort(storedError), true, storedError);
    else shutdown(true, storedError);
  };
  if (source._state === "errored") onSourceError(source._storedError);
  else uponPromise(reader._closed.promise, undefined, onSourceError);
  // errors must be propagated backward
  const onDestError = (storedError) => {
    if (!preventCancel) shutdownWithAction(() => source._cancel(storedError), true, storedError);
    else shutdown(true, storedError);
  };
  if (dest._state === "errored") onDestError(dest._storedError);
  else uponPromise(writer._closedD.promise, undefined, onDestError);
  // closing must be propagated forward
  const onSourceClosed = () => {
    if (!preventClose) {
      shutdownWithAction(() => {
        if (closeQueuedOrInFlight() || dest._state === "closed") return Promise.resolve();
        if (dest._state === "errored") return Promise.reject(dest._storedError);
        return dest._close();
      });
    } else shutdown();
  };
  if (source._state === "closed") onSourceClosed();
  else uponPromise(reader._closed.promise, onSourceClosed, ignore);
  // closing must be propagated backward
  if (closeQueuedOrInFlight() || dest._state === "closed") {
    const destClosed = new TypeError("the destination writable stream closed before all data could be piped to it");
    if (!preventCancel) shutdownWithAction(() => source._cancel(destClosed), true, destClosed);
    else shutdown(true, destClosed);
  }
  pipeLoop();
  return result.promise;
}

// Waits for every promise; rejects with the first rejection, as the pipe's abort actions want.
function allSettledFirstError(promises) {
  return new Promise((resolve, reject) => {
    let left = promises.length, failed = false, first;
    if (left === 0) { resolve(); return; }
    for (const p of promises) {
      uponPromise(p, () => { if (--left === 0) { if (failed) reject(first); else resolve(); } },
        (e) => { if (!failed) { failed = true; first = e; } if (--left === 0) reject(first); });
    }
  });
}


for (const C of [ReadableStreamDefaultController, ReadableByteStreamController, ReadableStreamBYOBRequest, ReadableStreamDefaultReader, WritableStreamDefaultController,
  WritableStreamDefaultWriter, TransformStreamDefaultController, CountQueuingStrategy, ByteLengthQueuingStrategy]) {
  Object.defineProperty(C.prototype, Symbol.toStringTag, { value: C.name, configurable: true });
}

// the original, before worker code can patch it (the async iterator releases its reader with it)
const readerReleaseLock = ReadableStreamDefaultReader.prototype.releaseLock;
const byobReaderReleaseLock = ReadableStreamBYOBReader.prototype.releaseLock;

expose("ReadableStream", ReadableStream);
expose("ReadableStreamDefaultReader", ReadableStreamDefaultReader);
expose("ReadableStreamDefaultController", ReadableStreamDefaultController);
expose("ReadableStreamBYOBReader", ReadableStreamBYOBReader);
expose("ReadableByteStreamController", ReadableByteStreamController);
expose("ReadableStreamBYOBRequest", ReadableStreamBYOBRequest);
expose("WritableStream", WritableStream);
expose("WritableStreamDefaultWriter", WritableStreamDefaultWriter);
expose("WritableStreamDefaultController", WritableStreamDefaultController);
expose("TransformStream", TransformStream);
expose("TransformStreamDefaultController", TransformStreamDefaultController);
expose("CountQueuingStrategy", CountQueuingStrategy);
expose("ByteLengthQueuingStrategy", ByteLengthQueuingStrategy);
expose("TextEncoderStream", TextEncoderStream);
expose("TextDecoderStream", TextDecoderStream);
