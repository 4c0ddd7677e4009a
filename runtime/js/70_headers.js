// Headers (Fetch Standard), and the header-name/value checks Request uses too.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\n\r\0]|[^\x00-\xff]/;

const validValues = new Map(); // value as given -> normalized, for short values already checked
function headerValue(v) {
  v = typeof v === "string" ? v : String(v);
  let out = validValues.get(v);
  if (out !== undefined) return out;
  out = v;
  const n = v.length;
  if (n !== 0 && (v.charCodeAt(0) <= 32 || v.charCodeAt(n - 1) <= 32)) out = v.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  if (BAD_VALUE.test(out)) throw new TypeError(`Invalid header value: ${JSON.stringify(out)}`);
  if (n <= 64 && validValues.size < 1000) validValues.set(v, out);
  return out;
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

let headersList, headersWithList, isHeaders; // the private list, for the runtime's own fast paths

class Headers {
  // Private, so a Headers has no own properties (JSON.stringify gives "{}", as in browsers); the
  // runtime's other classes reach them through the _list/_guard accessors below.
  #list = []; // [lowercased name, value] in insertion order
  #guard = "none";
  get _list() { return this.#list; }
  set _list(v) { this.#list = v; }
  get _guard() { return this.#guard; }
  set _guard(v) { this.#guard = v; }
  static {
    headersList = (h) => h.#list;
    headersWithList = (list) => { const h = new Headers(); h.#list = list; return h; };
    isHeaders = (x) => #list in x;
  }
  constructor(init = undefined) {
    if (init !== undefined) this.#list = headersInitList(init);
  }
  #check() {
    if (this.#guard === "immutable") throw new TypeError("Headers are immutable");
  }
  append(name, value) {
    const key = headerName(name);
    value = headerValue(value);
    this.#check();
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
    value = headerValue(value);
    this.#check();
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

const headersIterator = Headers.prototype[Symbol.iterator];
const propertyIsEnumerable = Object.prototype.propertyIsEnumerable;
const NOT_BYTES = /[^\x00-\xff]/;

// WebIDL ByteString: a string of code units up to U+00FF
function byteString(v) {
  v = typeof v === "string" ? v : String(v);
  if (validNames.has(v) || validValues.has(v)) return v; // checked already, and without a regex
  if (NOT_BYTES.test(v)) throw new TypeError(`Not a ByteString: ${JSON.stringify(v)}`);
  return v;
}

// The values of an iterable through the @@iterator method already read (WebIDL reads it once).
function* iterateWith(obj, method) {
  const it = method.call(obj);
  if (it === null || (typeof it !== "object" && typeof it !== "function")) throw new TypeError("Result of the Symbol.iterator method is not an object");
  const next = it.next;
  for (;;) {
    const r = next.call(it);
    if (r === null || (typeof r !== "object" && typeof r !== "function")) throw new TypeError("Iterator result is not an object");
    if (r.done) return;
    yield r.value;
  }
}

// A HeadersInit converted (and checked) into a list of [lowercased name, value]; Headers' constructor,
// and Response's, which keeps the list and makes its Headers only if they are read.
function headersInitList(init) {
  if (init === null || (typeof init !== "object" && typeof init !== "function")) {
    throw new TypeError("Headers init must be an object or iterable");
  }
  // WebIDL (sequence<sequence<ByteString>> or record<ByteString, ByteString>): converted whole,
  // in the standard's order of operations (observable through a Proxy), before anything is added
  const method = init[Symbol.iterator];
  const flat = []; // name, value, name, value, ...
  if (method !== undefined && method !== null) {
    if (typeof method !== "function") throw new TypeError("Headers init's Symbol.iterator is not a function");
    if (method === headersIterator && isHeaders(init)) return headersList(init).map((p) => p.slice());
    for (const pair of iterateWith(init, method)) {
      if (pair === null || (typeof pair !== "object" && typeof pair !== "function")) throw new TypeError("Headers init pairs must be sequences");
      const inner = pair[Symbol.iterator];
      if (typeof inner !== "function") throw new TypeError("Headers init pairs must be sequences");
      const arr = [];
      for (const v of iterateWith(pair, inner)) arr.push(byteString(v));
      if (arr.length !== 2) throw new TypeError("Headers init pairs must have exactly two items");
      flat.push(arr[0], arr[1]);
    }
  } else {
    const keys = Reflect.ownKeys(init);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (!propertyIsEnumerable.call(init, k)) continue;
      if (typeof k === "symbol") throw new TypeError("Headers init keys must be strings");
      flat.push(byteString(k), byteString(init[k]));
    }
  }
  const list = [];
  for (let i = 0; i < flat.length; i += 2) list.push([headerName(flat[i]), headerValue(flat[i + 1])]);
  return list;
}

// "name\nvalue\nname\nvalue": header lines as the host sends them (already valid and lowercased)
function pairsFromFlat(flat, list) {
  if (!flat) return list;
  const parts = flat.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) list.push([parts[i], parts[i + 1]]);
  return list;
}

function headersFromFlat(flat, guard) {
  const h = new Headers();
  pairsFromFlat(flat, h._list);
  h._guard = guard;
  return h;
}

expose("Headers", Headers);
