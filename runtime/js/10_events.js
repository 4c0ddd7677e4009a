// Event, EventTarget, AbortController, AbortSignal (DOM standard).

const trustedEvents = new WeakSet(); // events the platform fired (AbortSignal's "abort")

class Event {
  #type;
  #bubbles;
  #cancelable;
  #composed;
  #canceled = false;
  #stop = false;
  #stopProp = false;
  #timeStamp = performance.now();
  constructor(type, init = {}) {
    if (arguments.length === 0) throw new TypeError("Event constructor requires a type");
    if (init !== null && typeof init !== "object" && typeof init !== "function") throw new TypeError("EventInit must be an object");
    this.#type = String(type);
    this.#bubbles = !!(init && init.bubbles);
    this.#cancelable = !!(init && init.cancelable);
    this.#composed = !!(init && init.composed);
    this._target = null;
    this._current = null;
    this._dispatching = false;
    this._inPassive = false;
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
  get isTrusted() { return trustedEvents.has(this); }
  get composed() { return this.#composed; }
  get returnValue() { return !this.#canceled; }
  set returnValue(v) { if (!v) this.preventDefault(); }
  get cancelBubble() { return this.#stopProp; }
  set cancelBubble(v) { if (v) this.#stopProp = true; }
  composedPath() { return this._current ? [this._current] : []; }
  // a passive listener cannot cancel (DOM "set the canceled flag")
  preventDefault() { if (this.#cancelable && !this._inPassive) this.#canceled = true; }
  stopPropagation() { this.#stopProp = true; }
  stopImmediatePropagation() { this.#stop = true; this.#stopProp = true; }
  initEvent(type, bubbles = false, cancelable = false) {
    if (this._dispatching) return;
    this.#type = String(type);
    this.#bubbles = !!bubbles;
    this.#cancelable = !!cancelable;
    this.#canceled = false; this.#stop = false; this.#stopProp = false;
    this._target = null;
  }
  get _stopped() { return this.#stop; }
  get [Symbol.toStringTag]() { return "Event"; }
}
Event.NONE = 0; Event.CAPTURING_PHASE = 1; Event.AT_TARGET = 2; Event.BUBBLING_PHASE = 3;

class CustomEvent extends Event {
  #detail;
  constructor(type, init = {}) {
    if (arguments.length === 0) throw new TypeError("CustomEvent constructor requires a type");
    super(type, init);
    this.#detail = init && init.detail !== undefined ? init.detail : null;
  }
  get detail() { return this.#detail; }
  get [Symbol.toStringTag]() { return "CustomEvent"; }
}

class EventTarget {
  #listeners = new Map(); // type -> [{callback, once, capture}]
  addEventListener(type, callback, options) {
    checkListener(arguments.length, callback, "addEventListener");
    if (callback == null) return;
    const opts = typeof options === "boolean" ? { capture: options } : options || {};
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw new TypeError("addEventListener: signal must be an AbortSignal");
    const capture = !!opts.capture;
    type = String(type);
    let list = this.#listeners.get(type);
    if (!list) this.#listeners.set(type, (list = []));
    if (list.some((l) => l.callback === callback && l.capture === capture)) return;
    const entry = { callback, once: !!opts.once, passive: !!opts.passive, capture, removed: false };
    if (opts.signal) {
      if (opts.signal.aborted) return;
      opts.signal.addEventListener("abort", () => this.removeEventListener(type, callback, { capture }));
    }
    list.push(entry);
  }
  removeEventListener(type, callback, options) {
    checkListener(arguments.length, callback, "removeEventListener");
    const capture = typeof options === "boolean" ? options : !!(options && options.capture);
    const list = this.#listeners.get(String(type));
    if (!list) return;
    const i = list.findIndex((l) => l.callback === callback && l.capture === capture);
    if (i >= 0) { list[i].removed = true; list.splice(i, 1); }
  }
  dispatchEvent(event) {
    if (!(event instanceof Event)) throw new TypeError("dispatchEvent: argument is not an Event");
    if (event._dispatching) throw new DOMException("The event is already being dispatched", "InvalidStateError");
    event._dispatching = true;
    event._target = this;
    event._current = this;
    const list = this.#listeners.get(event.type);
    if (list) {
      for (const l of list.slice()) {
        if (l.removed) continue;
        if (l.once) this.removeEventListener(event.type, l.callback, { capture: l.capture });
        event._inPassive = l.passive;
        try {
          if (typeof l.callback === "function") l.callback.call(this, event);
          else if (l.callback && typeof l.callback.handleEvent === "function") l.callback.handleEvent(event);
        } catch (err) {
          reportError(err);
        }
        event._inPassive = false;
        if (event._stopped) break;
      }
    }
    event._current = null;
    event._dispatching = false;
    return !event.defaultPrevented;
  }
  get [Symbol.toStringTag]() { return "EventTarget"; }
}

// WebIDL: two arguments, and the listener is null/undefined or an object (a callback interface).
function checkListener(argc, callback, what) {
  if (argc < 2) throw new TypeError(`${what} requires 2 arguments`);
  if (callback != null && typeof callback !== "object" && typeof callback !== "function") throw new TypeError(`${what}: the listener must be an object`);
}

function reportError(err) {
  consoleOut("error", ["Uncaught", err]);
}

class AbortSignal extends EventTarget {
  #aborted = false;
  #reason = undefined;
  _algorithms = new Set();
  _dependents = new Set(); // signals made by AbortSignal.any() from this one
  constructor(key) {
    super();
    if (key !== SIGNAL_KEY) throw new TypeError("Illegal constructor");
  }
  // an event handler attribute: its listener takes its place among the others when first set
  get onabort() { return this._onabort === undefined ? null : this._onabort; }
  set onabort(v) {
    v = typeof v === "function" || (v !== null && typeof v === "object") ? v : null;
    if (v === null) {
      if (this._onabortListener) { this.removeEventListener("abort", this._onabortListener); this._onabortListener = undefined; }
    } else if (!this._onabortListener) {
      this._onabortListener = (e) => { const h = this._onabort; if (typeof h === "function") h.call(this, e); };
      this.addEventListener("abort", this._onabortListener);
    }
    this._onabort = v;
  }
  get aborted() { return this.#aborted; }
  get reason() { return this.#reason; }
  throwIfAborted() { if (this.#aborted) throw this.#reason; }
  // DOM "signal abort": dependents are marked aborted first, but their algorithms and events run
  // after this signal's own.
  _abort(reason) {
    if (this.#aborted) return;
    this._markAborted(reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason);
    const dependents = [];
    for (const d of this._dependents) {
      if (!d.aborted) { d._markAborted(this.#reason); dependents.push(d); }
    }
    this._dependents.clear();
    this._runAbortSteps();
    for (const d of dependents) d._runAbortSteps();
  }
  _markAborted(reason) {
    this.#aborted = true;
    this.#reason = reason;
  }
  _runAbortSteps() {
    for (const alg of this._algorithms) {
      try { alg(this.#reason); } catch (err) { reportError(err); }
    }
    this._algorithms.clear();
    const ev = new Event("abort");
    trustedEvents.add(ev);
    this.dispatchEvent(ev);
  }
  static abort(reason) {
    const s = new AbortSignal(SIGNAL_KEY);
    s._abort(reason);
    return s;
  }
  static timeout(ms) {
    // [EnforceRange] unsigned long long
    const x = arguments.length === 0 ? NaN : Math.trunc(+ms);
    if (!(x >= 0 && x <= Number.MAX_SAFE_INTEGER)) throw new TypeError("AbortSignal.timeout: milliseconds out of range");
    ms = x;
    const s = new AbortSignal(SIGNAL_KEY);
    setTimeout(() => s._abort(new DOMException("The operation timed out.", "TimeoutError")), ms);
    return s;
  }
  static any(signals) {
    if (signals === null || typeof signals !== "object" || typeof signals[Symbol.iterator] !== "function") {
      throw new TypeError("AbortSignal.any needs a sequence of AbortSignals");
    }
    signals = Array.from(signals);
    for (const x of signals) if (!(x instanceof AbortSignal)) throw new TypeError("AbortSignal.any needs a sequence of AbortSignals");
    const s = new AbortSignal(SIGNAL_KEY);
    for (const other of signals) {
      if (other.aborted) { s._abort(other.reason); return s; }
    }
    // a dependent signal's sources are linked directly (DOM "create a dependent abort signal")
    s._sources = [];
    for (const other of signals) {
      for (const src of other._sources || [other]) {
        if (!s._sources.includes(src)) { s._sources.push(src); src._dependents.add(s); }
      }
    }
    return s;
  }
  get [Symbol.toStringTag]() { return "AbortSignal"; }
}
const SIGNAL_KEY = Symbol("signal");

class AbortController {
  #signal = new AbortSignal(SIGNAL_KEY);
  get signal() { return this.#signal; }
  abort(reason) { this.#signal._abort(reason); }
  get [Symbol.toStringTag]() { return "AbortController"; }
}

expose("Event", Event);
expose("CustomEvent", CustomEvent);
expose("EventTarget", EventTarget);
expose("AbortSignal", AbortSignal);
expose("AbortController", AbortController);
