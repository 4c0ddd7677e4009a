// Headers (Fetch Standard), and the header-name/value checks Request uses too.

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

expose("Headers", Headers);
