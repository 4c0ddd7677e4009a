// Event, EventTarget, AbortController, AbortSignal (DOM standard).

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
  get isTrusted() { return false; }
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
    const entry = { callback, once: !!opts.once, passive: !!opts.passive, capture, removed: false };
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

function reportError(err) {
  consoleOut("error", ["Uncaught", err]);
}

class AbortSignal extends EventTarget {
  #aborted = false;
  #reason = undefined;
  _algorithms = new Set();
  _dependents = new Set(); // signals made by AbortSignal.any() from this one
  onabort = null;
  constructor(key) {
    super();
    if (key !== SIGNAL_KEY) throw new TypeError("Illegal constructor");
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
