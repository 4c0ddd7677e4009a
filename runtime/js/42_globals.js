// The remaining globals of a worker's scope: navigator, self, reportError, performance; and HTML's
// unhandled promise rejections, reported to the log as browsers and workerd do.

class Navigator {
  get userAgent() { return "Ploy"; }
  get hardwareConcurrency() { return 1; }
  get language() { return "en-US"; }
  get languages() { return ["en-US"]; }
  get [Symbol.toStringTag]() { return "Navigator"; }
}
expose("navigator", new Navigator());
expose("Navigator", Navigator);
expose("self", globalThis);
expose("reportError", function (e) {
  if (arguments.length === 0) throw new TypeError("reportError requires 1 argument");
  reportError(e);
});
// The engine's performance.timeOrigin counts from a monotonic clock's epoch (and cannot be
// redefined); HR-Time says Unix epoch milliseconds, so workers get a Performance of ours.
const nativeNow = performance.now.bind(performance);
const TIME_ORIGIN = Date.now() - nativeNow();
class Performance extends EventTarget {
  get timeOrigin() { return TIME_ORIGIN; }
  now() { return nativeNow(); }
  toJSON() { return { timeOrigin: TIME_ORIGIN }; }
  get [Symbol.toStringTag]() { return "Performance"; }
}
expose("performance", new Performance());
expose("Performance", Performance);

// Called by the engine's promise-rejection tracker (runtime/workers/quickjs_hooks.py) for every
// promise rejected while it has no handler (handled = false), and when such a promise gets one.
// HTML reports the rejections still unhandled at the next microtask checkpoint: the host empties
// the job queue before it handles the op sent here, and then calls reportRejections.
const unhandledRejections = new Map(); // promise -> [reason, rid]
function trackRejection(promise, reason, handled) {
  if (handled) { unhandledRejections.delete(promise); return; }
  if (unhandledRejections.size === 0) hostSend("rejections");
  unhandledRejections.set(promise, [reason, currentRid]);
}

// Host entry: log each rejection still unhandled, with its stack, under the request it belongs to.
function reportRejections() {
  const rid = currentRid;
  for (const [reason, r] of unhandledRejections.values()) {
    currentRid = r;
    consoleOut("error", ["Uncaught (in promise)", reason]);
  }
  unhandledRejections.clear();
  currentRid = rid;
}
expose("__ploy_trackRejection", trackRejection);
