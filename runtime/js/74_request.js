// Request (Fetch Standard), and the incoming request the host hands to the worker's fetch handler.

const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]; // normalized to upper case; PATCH is not (Fetch standard)

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

includeBody(Request);
expose("Request", Request);
