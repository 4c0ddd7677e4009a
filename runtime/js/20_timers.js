// setTimeout & co. The host keeps ONE wake-up for the earliest deadline; JS owns the timer list so
// timers fire ordered by deadline, then by insertion (HTML's "run steps after a timeout").

const timers = new Map(); // id -> {deadline, seq, cb, args, interval, rid}
let nextTimerId = 1;
let timerSeq = 0;
let reportedDeadline = -1;

// HTML's timeout is a WebIDL `long`: ToInt32, so 2**31 wraps negative and means 0, as in browsers.
function timerDelay(ms) {
  ms = Number(ms) | 0;
  return ms > 0 ? ms : 0;
}

function addTimer(cb, ms, args, repeat) {
  if (typeof cb !== "function") {
    const code = String(cb);
    cb = () => (0, eval)(code);
  }
  const id = nextTimerId++;
  const delay = timerDelay(ms);
  const deadline = performance.now() + delay;
  timers.set(id, { deadline, seq: timerSeq++, cb, args, interval: repeat ? delay : -1, rid: currentRid });
  if (reportedDeadline < 0 || deadline < reportedDeadline) reportTimers();
  return id;
}

function clearTimer(id) {
  const t = timers.get(Number(id));
  if (t === undefined) return;
  timers.delete(Number(id));
  if (t.deadline === reportedDeadline) reportTimers();
}

function earliestTimer() {
  let best = null;
  for (const t of timers.values()) {
    if (best === null || t.deadline < best.deadline || (t.deadline === best.deadline && t.seq < best.seq)) best = t;
  }
  return best;
}

// Whenever the earliest deadline may have moved: tell the host when to wake us, if that changed.
function reportTimers() {
  const t = earliestTimer();
  const deadline = t === null ? -1 : t.deadline;
  if (deadline !== reportedDeadline) {
    reportedDeadline = deadline;
    hostSend("timer", deadline === -1 ? -1 : Math.max(0, deadline - performance.now()));
  }
}

// Host entry: run the one earliest due timer. Returns true when one ran (the host drains microtasks
// and calls again, so microtasks run between timers as HTML requires).
function fireTimer() {
  reportedDeadline = -2; // the host's wake-up is spent: whatever happens, report afresh
  try {
    const t = earliestTimer();
    if (t === null || t.deadline > performance.now()) return false;
    let id = 0;
    for (const [k, v] of timers) if (v === t) id = k;
    if (t.interval >= 0) {
      t.deadline = performance.now() + t.interval;
      t.seq = timerSeq++;
    } else {
      timers.delete(id);
    }
    currentRid = t.rid;
    try {
      t.cb.apply(globalThis, t.args);
    } catch (err) {
      reportError(err);
    }
    return true;
  } finally {
    reportTimers();
  }
}

expose("setTimeout", (cb, ms, ...args) => addTimer(cb, ms, args, false));
expose("setInterval", (cb, ms, ...args) => addTimer(cb, ms, args, true));
expose("clearTimeout", clearTimer);
expose("clearInterval", clearTimer);
expose("setImmediate", (cb, ...args) => addTimer(cb, 0, args, false));
expose("clearImmediate", clearTimer);
// HTML reports an exception thrown by a microtask callback; it is not the current request's error
// (the engine's own queueMicrotask would abort the job queue run with it).
const nativeQueueMicrotask = queueMicrotask;
expose("queueMicrotask", function queueMicrotask(callback) {
  if (typeof callback !== "function") throw new TypeError("queueMicrotask: the callback must be a function");
  const rid = currentRid;
  nativeQueueMicrotask(() => {
    try {
      callback();
    } catch (err) {
      currentRid = rid;
      reportError(err);
    }
  });
});
