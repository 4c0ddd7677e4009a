// WebSocket and WebSocketPair as on Cloudflare Workers, with MessageEvent and CloseEvent.
//
// A JS WebSocket is a handle on a Python end (bindings/web.py) that the host keeps under the same id:
// one end of a WebSocketPair (negative ids, chosen here), or a socket the host made (positive ids:
// a sandbox terminal, wsConnect, an outgoing fetch with `Upgrade: websocket`). accept() asks the host
// to deliver the end's messages as events (`__ploy_wsEvent`); send() and close() go to the host.
// A 101 Response's webSocket is handed to the host with the response, which bridges it to the client.

const WS_CONNECTING = 0, WS_OPEN = 1, WS_CLOSING = 2, WS_CLOSED = 3;
const liveSockets = new Map(); // id -> WebSocket whose events the host delivers (accepted)
let nextPairId = -1;

class MessageEvent extends Event {
  #data; #origin; #lastEventId; #source; #ports;
  constructor(type, init = {}) {
    super(type, init);
    this.#data = init && init.data !== undefined ? init.data : null;
    this.#origin = init && init.origin !== undefined ? String(init.origin) : "";
    this.#lastEventId = init && init.lastEventId !== undefined ? String(init.lastEventId) : "";
    this.#source = (init && init.source) || null;
    this.#ports = (init && init.ports) || [];
  }
  get data() { return this.#data; }
  get origin() { return this.#origin; }
  get lastEventId() { return this.#lastEventId; }
  get source() { return this.#source; }
  get ports() { return this.#ports; }
  get [Symbol.toStringTag]() { return "MessageEvent"; }
}

class CloseEvent extends Event {
  #code; #reason; #wasClean;
  constructor(type, init = {}) {
    super(type, init);
    this.#code = init && init.code !== undefined ? Number(init.code) : 0;
    this.#reason = init && init.reason !== undefined ? String(init.reason) : "";
    this.#wasClean = !!(init && init.wasClean);
  }
  get code() { return this.#code; }
  get reason() { return this.#reason; }
  get wasClean() { return this.#wasClean; }
  get [Symbol.toStringTag]() { return "CloseEvent"; }
}

class ErrorEvent extends Event {
  #message; #error;
  constructor(type, init = {}) {
    super(type, init);
    this.#message = init && init.message !== undefined ? String(init.message) : "";
    this.#error = init && init.error !== undefined ? init.error : null;
  }
  get message() { return this.#message; }
  get error() { return this.#error; }
  get [Symbol.toStringTag]() { return "ErrorEvent"; }
}

class WebSocket extends EventTarget {
  _id = 0; _state = WS_CONNECTING; _accepted = false; _url = ""; _protocol = "";
  _binaryType = "arraybuffer";
  onopen = null; onmessage = null; onclose = null; onerror = null;
  // new WebSocket(url, protocols): an outgoing connection (Cloudflare allows it too); `open` fires once
  // the server accepted the upgrade.
  constructor(url, protocols) {
    super();
    if (url === INTERNAL) return;
    let u;
    try { u = new URL(String(url)); } catch { throw new DOMException(`Invalid URL: ${url}`, "SyntaxError"); }
    if (u.protocol === "ws:") u.protocol = "http:";
    else if (u.protocol === "wss:") u.protocol = "https:";
    else if (u.protocol !== "http:" && u.protocol !== "https:") throw new DOMException(`WebSocket URL scheme must be ws or wss: ${url}`, "SyntaxError");
    this._url = String(url);
    const list = protocols === undefined ? [] : typeof protocols === "string" ? [protocols] : Array.from(protocols, String);
    const headers = { upgrade: "websocket" };
    if (list.length) headers["sec-websocket-protocol"] = list.join(", ");
    fetch(u.href, { headers }).then((resp) => {
      const ws = resp.webSocket;
      if (!ws) throw new Error(`the server answered the upgrade with HTTP ${resp.status}`);
      this._id = ws._id;
      this._protocol = ws._protocol;
      this._state = WS_OPEN;
      liveSockets.set(this._id, this);
      this._accepted = true;
      hostSend("wsAccept", this._id);
      this._fire(new Event("open"), "onopen");
    }).catch((err) => {
      this._state = WS_CLOSED;
      this._fire(new ErrorEvent("error", { message: String(err && err.message || err), error: err }), "onerror");
      this._fire(new CloseEvent("close", { code: 1006, reason: "", wasClean: false }), "onclose");
    });
  }
  get readyState() { return this._state; }
  get url() { return this._url || null; }
  get protocol() { return this._protocol; }
  get extensions() { return ""; }
  // send() hands a message to the host at once; a peer that leaves 16 MiB unread gets the socket
  // closed with 1009 (websocket.py), since send() cannot wait. So nothing is ever buffered here.
  get bufferedAmount() { return 0; }
  get binaryType() { return this._binaryType; }
  set binaryType(v) { if (v === "arraybuffer" || v === "blob") this._binaryType = v; }
  accept() {
    if (this._accepted) throw new TypeError("WebSocket.accept(): the socket was already accepted");
    if (this._id === 0) throw new TypeError("WebSocket.accept() is for the server end of a WebSocketPair or a socket of a 101 response");
    if (this._handedOver) throw new TypeError("WebSocket.accept(): the socket was returned in a Response");
    this._accepted = true;
    if (this._state === WS_CONNECTING) this._state = WS_OPEN;
    liveSockets.set(this._id, this);
    hostSend("wsAccept", this._id);
  }
  send(data) {
    if (!this._accepted) throw new DOMException("WebSocket.send(): accept() the socket first", "InvalidStateError");
    if (this._state !== WS_OPEN) throw new TypeError("WebSocket.send() after close()");
    if (typeof data === "string") hostSend("wsSend", this._id, data, 1);
    else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) hostSend("wsSend", this._id, bytesToLatin1(toU8(data)), 0);
    else if (data instanceof Blob) hostSend("wsSend", this._id, bytesToLatin1(data._bytes), 0);
    else hostSend("wsSend", this._id, String(data), 1);
  }
  close(code, reason) {
    if (code !== undefined) {
      code = Number(code);
      if (!(code === 1000 || (code >= 3000 && code <= 4999))) throw new DOMException(`WebSocket.close(): invalid code ${code}`, "InvalidAccessError");
    }
    reason = reason === undefined ? "" : String(reason);
    if (utf8Encode(reason).length > 123) throw new DOMException("WebSocket.close(): the reason is longer than 123 bytes", "SyntaxError");
    if (this._state === WS_CLOSING || this._state === WS_CLOSED) return;
    this._state = WS_CLOSING;
    hostSend("wsClose", this._id, code === undefined ? 1000 : code, reason);
  }
  _fire(event, handler) {
    const h = this[handler];
    if (typeof h === "function") {
      try { h.call(this, event); } catch (err) { reportError(err); }
    }
    this.dispatchEvent(event);
  }
  static get CONNECTING() { return WS_CONNECTING; }
  static get OPEN() { return WS_OPEN; }
  static get CLOSING() { return WS_CLOSING; }
  static get CLOSED() { return WS_CLOSED; }
  get CONNECTING() { return WS_CONNECTING; }
  get OPEN() { return WS_OPEN; }
  get CLOSING() { return WS_CLOSING; }
  get CLOSED() { return WS_CLOSED; }
  get [Symbol.toStringTag]() { return "WebSocket"; }
}

function socketFor(id) {
  const ws = new WebSocket(INTERNAL);
  ws._id = id;
  return ws;
}

// A socket the host made (codec tag __ploy_ws), with its negotiated subprotocol.
function wsFromHost(desc) {
  const ws = socketFor(desc[0]);
  ws._protocol = desc[1] || "";
  return ws;
}

// A Response a binding made (codec tag __ploy_response): its body stays on the host until read.
function responseFromHost(d) {
  const r = new Response(INTERNAL);
  r[kStatus] = d.status;
  r[kStatusText] = d.statusText || "";
  const h = new Headers();
  h._list = d.headers;
  r[kHeaders] = h;
  if (d.stream !== null && d.stream !== undefined) r[kBody] = { source: null, stream: hostReadableStream(d.stream) };
  else if (d.bin !== null && d.bin !== undefined) r[kBody] = { source: null, bin: d.bin, stream: null };
  if (d.ws !== null && d.ws !== undefined) r[kWebSocket] = wsFromHost(d.ws);
  return r;
}

class WebSocketPair {
  constructor() {
    const a = nextPairId--, b = nextPairId--;
    hostSend("wsPair", a, b);
    this[0] = socketFor(a);
    this[1] = socketFor(b);
  }
  get [Symbol.toStringTag]() { return "WebSocketPair"; }
}

// Host entry: what happened on an accepted socket. kind: "t" text, "b" bytes (latin-1), "c" closed
// (data: the reason).
function wsEvent(id, kind, data, code) {
  const ws = liveSockets.get(id);
  if (!ws) return;
  if (kind === "t") ws._fire(new MessageEvent("message", { data }), "onmessage");
  else if (kind === "b") {
    const u8 = latin1ToBytes(data);
    ws._fire(new MessageEvent("message", { data: ws._binaryType === "blob" ? new Blob([u8]) : u8.buffer }), "onmessage");
  } else if (kind === "c") {
    liveSockets.delete(id);
    ws._state = WS_CLOSED;
    if (code === 1009 && data) ws._fire(new ErrorEvent("error", { message: data }), "onerror");
    ws._fire(new CloseEvent("close", { code, reason: data, wasClean: code !== 1006 }), "onclose");
  }
}

// The 101 Response's client end, handed to the host with the response (90_entry.js respond).
function handOverSocket(resp) {
  const ws = resp[kWebSocket];
  if (!ws) return null;
  if (ws._accepted) throw new TypeError("The Response's webSocket was accepted: return the other end of the WebSocketPair");
  ws._handedOver = true;
  return ws._id;
}

// fetch() with `Upgrade: websocket` (Cloudflare's way to open an outgoing WebSocket): a 101 Response
// whose webSocket is connected to the server, or the server's refusal as a plain Response.
function websocketFetch(req) {
  const url = req[kUrl].replace(/^http/, "ws");
  return hostCall("wsConnectUrl", url, req.headers._list);
}

expose("WebSocket", WebSocket);
expose("WebSocketPair", WebSocketPair);
expose("MessageEvent", MessageEvent);
expose("CloseEvent", CloseEvent);
expose("ErrorEvent", ErrorEvent);
expose("__ploy_wsEvent", wsEvent);
