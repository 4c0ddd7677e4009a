// The remaining globals of a worker's scope: navigator, self, reportError, performance.

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
