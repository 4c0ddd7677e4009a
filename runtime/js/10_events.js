// Event, EventTarget, AbortController, AbortSignal (DOM standard).

class Event {
  #type;
  #bubbles;
  #cancelable;
  #canceled = false;
  #stop = false;
  #timeStamp = performance.now();
  constructor(type, init = {}) {
    if (arguments.length === 0) throw new TypeError("Event constructor requires a type");
    this.#type = String(type);
    this.#bubbles = !!(init && init.bubbles);
    this.#cancelable = !!(init && init.cancelable);
    this._target = null;
    this._current = null;
  }
  get type() { return this.#type; }
  get bubbles() { return this.#bubbles; }
  get cancelable() { return this.#cancelable; }
  get defaultPrevented() { return this.#canceled; }
  get target() { return this._target; }
  get srcElement() { return this._target; }
  get currentTarget() { return this._current; }
  get timeStamp() { return this.#timeStamp; }
  get eventPhase() { return this._current ? 2 : 0; }
  get isTrusted() { return false; }
  get composed() { return false; }
  get returnValue() { return !this.#canceled; }
  composedPath() { return this._current ? [this._current] : []; }
  preventDefault() { if (this.#cancelable) this.#canceled = true; }
  stopPropagation() {}
  stopImmediatePropagation() { this.#stop = true; }
  get _stopped() { return this.#stop; }
  get [Symbol.toStringTag]() { return "Event"; }
}
Event.NONE = 0; Event.CAPTURING_PHASE = 1; Event.AT_TARGET = 2; Event.BUBBLING_PHASE = 3;

class CustomEvent extends Event {
  #detail;
  constructor(type, init = {}) { super(type, init); this.#detail = init && init.detail !== undefined ? init.detail : null; }
  get detail() { return this.#detail; }
}

class EventTarget {
  #listeners = new Map(); // type -> [{callback, once, capture}]
  addEventListener(type, callback, options) {
    if (callback == null) return;
    const opts = typeof options === "boolean" ? { capture: options } : options || {};
    const capture = !!opts.capture;
    type = String(type);
    let list = this.#listeners.get(type);
    if (!list) this.#listeners.set(type, (list = []));
    if (list.some((l) => l.callback === callback && l.capture === capture)) return;
    const entry = { callback, once: !!opts.once, capture, removed: false };
    if (opts.signal) {
      if (opts.signal.aborted) return;
      opts.signal.addEventListener("abort", () => this.removeEventListener(type, callback, { capture }));
    }
    list.push(entry);
  }
  removeEventListener(type, callback, options) {
    const capture = typeof options === "boolean" ? options : !!(options && options.capture);
    const list = this.#listeners.get(String(type));
    if (!list) return;
    const i = list.findIndex((l) => l.callback === callback && l.capture === capture);
    if (i >= 0) { list[i].removed = true; list.splice(i, 1); }
  }
  dispatchEvent(event) {
    if (!(event instanceof Event)) throw new TypeError("dispatchEvent: argument is not an Event");
    event._target = this;
    event._current = this;
    const list = this.#listeners.get(event.type);
    if (list) {
      for (const l of list.slice()) {
        if (l.removed) continue;
        if (l.once) this.removeEventListener(event.type, l.callback, { capture: l.capture });
        try {
          if (typeof l.callback === "function") l.callback.call(this, event);
          else if (l.callback && typeof l.callback.handleEvent === "function") l.callback.handleEvent(event);
        } catch (err) {
          reportError(err);
        }
        if (event._stopped) break;
      }
    }
    event._current = null;
    return !event.defaultPrevented;
  }
}

function reportError(err) {
  consoleOut("error", ["Uncaught", err]);
}

class AbortSignal extends EventTarget {
  #aborted = false;
  #reason = undefined;
  _algorithms = new Set();
  onabort = null;
  constructor(key) {
    super();
    if (key !== SIGNAL_KEY) throw new TypeError("Illegal constructor");
  }
  get aborted() { return this.#aborted; }
  get reason() { return this.#reason; }
  throwIfAborted() { if (this.#aborted) throw this.#reason; }
  _abort(reason) {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
    for (const alg of this._algorithms) {
      try { alg(this.#reason); } catch (err) { reportError(err); }
    }
    this._algorithms.clear();
    const ev = new Event("abort");
    if (typeof this.onabort === "function") {
      try { this.onabort.call(this, ev); } catch (err) { reportError(err); }
    }
    this.dispatchEvent(ev);
  }
  static abort(reason) {
    const s = new AbortSignal(SIGNAL_KEY);
    s._abort(reason);
    return s;
  }
  static timeout(ms) {
    const s = new AbortSignal(SIGNAL_KEY);
    setTimeout(() => s._abort(new DOMException("The operation timed out.", "TimeoutError")), ms);
    return s;
  }
  static any(signals) {
    const s = new AbortSignal(SIGNAL_KEY);
    for (const other of signals) {
      if (other.aborted) { s._abort(other.reason); return s; }
    }
    for (const other of signals) other._algorithms.add((r) => s._abort(r));
    return s;
  }
  get [Symbol.toStringTag]() { return "AbortSignal"; }
}
const SIGNAL_KEY = Symbol("signal");

class AbortController {
  #signal = new AbortSignal(SIGNAL_KEY);
  get signal() { return this.#signal; }
  abort(reason) { this.#signal._abort(reason); }
}

expose("Event", Event);
expose("CustomEvent", CustomEvent);
expose("EventTarget", EventTarget);
expose("AbortSignal", AbortSignal);
expose("AbortController", AbortController);
