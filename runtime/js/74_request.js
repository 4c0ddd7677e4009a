// Request (Fetch Standard), and the incoming request the host hands to the worker's fetch handler.

const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]; // normalized to upper case; PATCH is not (Fetch standard)

const kUrl = Symbol("url"), kMethod = Symbol("method"), kSignal = Symbol("signal"), kRedirect = Symbol("redirect");
const kMode = Symbol("mode"), kCache = Symbol("cache"), kCredentials = Symbol("credentials"), kExtra = Symbol("extra");
const kCf = Symbol("cf"), kRid = Symbol("rid"), kHeadersFlat = Symbol("headersFlat");

class Request {
  constructor(input, init = {}) {
    if (input === INTERNAL) return;
    if (arguments.length === 0) throw new TypeError("Request constructor requires an input");
    if (init === null || init === undefined) init = {};
    else if (typeof init !== "object" && typeof init !== "function") throw new TypeError("RequestInit must be an object");
    let src = null;
    if (input instanceof Request) {
      src = input;
      this[kUrl] = input[kUrl];
      this[kMethod] = input[kMethod];
      this[kHeaders] = new Headers(input.headers);
      this[kRedirect] = input[kRedirect];
      this[kMode] = input[kMode]; this[kCache] = input[kCache]; this[kCredentials] = input[kCredentials];
      if (input[kExtra] !== undefined) this[kExtra] = input[kExtra];
      if (init.signal === undefined && input[kSignal]) this[kSignal] = followSignal(input[kSignal]);
    } else {
      let u;
      try { u = new URL(String(input)); } catch { throw new TypeError(`Invalid URL: ${input}`); }
      if (u.username || u.password) throw new TypeError("Request URL must not include credentials");
      this[kUrl] = u.href;
      this[kMethod] = "GET";
      this[kHeaders] = new Headers();
    }
    if (init.method !== undefined) {
      const m = String(init.method);
      if (!TOKEN.test(m)) throw new TypeError(`Invalid method: ${m}`);
      const up = m.toUpperCase();
      if (up === "CONNECT" || up === "TRACE" || up === "TRACK") throw new TypeError(`Forbidden method: ${m}`);
      this[kMethod] = METHODS.includes(up) ? up : m;
    }
    if (init.headers !== undefined) this[kHeaders] = new Headers(init.headers);
    if (init.redirect !== undefined) {
      if (!["follow", "error", "manual"].includes(init.redirect)) throw new TypeError(`Invalid redirect mode: ${init.redirect}`);
      this[kRedirect] = init.redirect;
    }
    if (init.mode !== undefined) {
      const m = requestEnum("mode", init.mode, ["same-origin", "no-cors", "cors", "navigate"]);
      if (m === "navigate") throw new TypeError("Request mode 'navigate' cannot be set");
      this[kMode] = m;
    }
    if (init.cache !== undefined) this[kCache] = requestEnum("cache", init.cache, ["default", "no-store", "reload", "no-cache", "force-cache", "only-if-cached"]);
    if (init.credentials !== undefined) this[kCredentials] = requestEnum("credentials", init.credentials, ["omit", "same-origin", "include"]);
    if (init.window !== undefined && init.window !== null) throw new TypeError("RequestInit.window must be null");
    if (init.referrer !== undefined || init.referrerPolicy !== undefined || init.integrity !== undefined || init.keepalive !== undefined) {
      this[kExtra] = requestExtra(this[kExtra], init);
    }
    if (init.duplex !== undefined) requestEnum("duplex", init.duplex, ["half"]);
    if (this[kMode] === "no-cors" && this[kMethod] !== "GET" && this[kMethod] !== "HEAD" && this[kMethod] !== "POST") {
      throw new TypeError(`Method ${this[kMethod]} is not allowed in no-cors mode`);
    }
    if (this[kCache] === "only-if-cached" && this[kMode] !== "same-origin") {
      throw new TypeError("Request cache mode 'only-if-cached' needs mode 'same-origin'");
    }
    if (init.signal !== undefined && init.signal !== null) {
      if (!(init.signal instanceof AbortSignal)) throw new TypeError("RequestInit.signal must be an AbortSignal");
      this[kSignal] = followSignal(init.signal);
    }
    if (init.cf !== undefined) this[kCf] = init.cf;
    const hasBody = init.body !== undefined && init.body !== null;
    if ((hasBody || (src && src[kBody] !== null)) && (this[kMethod] === "GET" || this[kMethod] === "HEAD")) {
      throw new TypeError("Request with GET/HEAD method cannot have body.");
    }
    if (hasBody) {
      if (src && src[kBody] !== null && !src.bodyUsed) {
        // a usable input body is disturbed all the same, though this request has a body of its own
        const st = src[kBody].stream;
        if (st === null) src[kUsed] = true;
        else if (!st.locked) { st.getReader(); st._disturbed = true; src[kUsed] = true; }
      }
      const [body, type] = extractBody(init.body);
      if (body.stream !== null) {
        if (init.duplex !== "half") throw new TypeError("RequestInit.duplex must be 'half' when the body is a ReadableStream");
        if (this[kExtra] !== undefined && this[kExtra].keepalive) throw new TypeError("A keepalive request cannot have a ReadableStream body");
      }
      this[kBody] = body;
      if (type && !this[kHeaders].has("content-type")) this[kHeaders].set("content-type", type);
    } else if (src && src[kBody] !== null) {
      if (src.bodyUsed || (src[kBody].stream !== null && src[kBody].stream.locked)) {
        throw new TypeError("Cannot construct a Request with a Request whose body is used or locked");
      }
      const b = src[kBody];
      if (b.stream === null) {
        // not looked at yet: the bytes move here; the input's body reads as used (disturbed, locked)
        this[kBody] = { source: b.source, bin: b.bin, stream: null };
      } else {
        // the input keeps its stream, now locked and disturbed, and this one reads through it
        const reader = b.stream.getReader();
        b.stream._disturbed = true;
        this[kBody] = { source: null, stream: new ReadableStream({
          pull(c) { return reader.read().then((r) => { if (r.done) c.close(); else c.enqueue(r.value); }); },
          cancel(reason) { return reader.cancel(reason); },
        }) };
      }
      src[kUsed] = true;
    }
  }
  get url() { return this[kUrl]; }
  get method() { return this[kMethod]; }
  get headers() {
    const h = this[kHeaders];
    // an incoming request's headers are parsed from the host's flat text only when someone looks
    return h !== null ? h : (this[kHeaders] = headersFromFlat(this[kHeadersFlat], "immutable"));
  }
  get cf() { return this[kCf]; }
  get redirect() { return this[kRedirect]; }
  get signal() {
    if (!this[kSignal]) {
      const ac = new AbortController();
      this[kSignal] = ac.signal;
      // the incoming request's signal aborts when the client goes away mid-response
      if (this[kRid] !== undefined) requestAborters.set(this[kRid], ac);
    }
    return this[kSignal];
  }
  get cache() { return this[kCache]; }
  get credentials() { return this[kCredentials]; }
  get destination() { return ""; }
  get integrity() { return this[kExtra] !== undefined ? this[kExtra].integrity : ""; }
  get keepalive() { return this[kExtra] !== undefined ? this[kExtra].keepalive : false; }
  get mode() { return this[kMode]; }
  get referrer() { return this[kExtra] !== undefined ? this[kExtra].referrer : "about:client"; }
  get referrerPolicy() { return this[kExtra] !== undefined ? this[kExtra].referrerPolicy : ""; }
  get duplex() { return "half"; }
  get isReloadNavigation() { return false; }
  get isHistoryNavigation() { return false; }
  clone() {
    const r = new Request(INTERNAL);
    r[kUrl] = this[kUrl]; r[kMethod] = this[kMethod]; r[kHeaders] = new Headers(this.headers); r[kHeaders]._guard = this.headers._guard;
    r[kRedirect] = this[kRedirect]; r[kMode] = this[kMode]; r[kCache] = this[kCache]; r[kCredentials] = this[kCredentials]; r[kCf] = this[kCf];
    if (this[kExtra] !== undefined) r[kExtra] = this[kExtra];
    r[kSignal] = followSignal(this.signal); // the clone's own signal, aborted with this one
    r[kBody] = cloneBody(this);
    return r;
  }
  get [Symbol.toStringTag]() { return "Request"; }
  [INSPECT]() { return `Request { method: ${quoteString(this[kMethod])}, url: ${quoteString(this[kUrl])}, headers: ${inspect(this.headers)} }`; }
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

// `body`: null, the body decoded from UTF-8 (`text`), or its bytes as latin-1 (decoded only if read)
function incomingRequest(rid, method, url, headersFlat, body, text) {
  const r = new Request(INTERNAL);
  r[kRid] = rid;
  r[kUrl] = url;
  r[kMethod] = method;
  r[kHeaders] = null;
  r[kHeadersFlat] = headersFlat;
  if (body !== null) r[kBody] = text ? { source: body, stream: null } : { source: null, bin: body, stream: null };
  return r;
}

includeBody(Request);
internalDefaults(Request.prototype, [[kSignal, undefined], [kRedirect, "follow"], [kMode, "cors"], [kCache, "default"],
  [kCredentials, "same-origin"], [kExtra, undefined], [kCf, undefined], [kRid, undefined], [kHeadersFlat, ""]]);
expose("Request", Request);
