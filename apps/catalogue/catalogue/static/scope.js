// A cancellation scope per page: the browser's side of request
// cancellation. Every request a page makes carries the scope's signal;
// leaving the page (pagehide, also when the page goes into the
// back/forward cache, where the browser would not abort by itself)
// aborts them all, so the server sees the disconnect and stops.
// `latest()` gives a lane in which a newer request aborts the older
// one: a search typed on supersedes the search before it.

export class PageScope {
  constructor(target = window) {
    this.controller = new AbortController();
    target.addEventListener("pagehide", () => this.abort("page left"));
  }

  get signal() {
    return this.controller.signal;
  }

  abort(reason) {
    if (!this.controller.signal.aborted) {
      this.controller.abort(reason);
    }
  }

  // Returns a function; each call aborts the signal it returned before
  // and returns a new one, also aborted when the page is left.
  latest() {
    let current = null;
    return () => {
      if (current) {
        current.abort("superseded");
      }
      current = new AbortController();
      return linked(this.signal, current.signal);
    };
  }
}

function linked(...signals) {
  if (typeof AbortSignal.any === "function") {
    return AbortSignal.any(signals);
  }
  const controller = new AbortController();
  for (const signal of signals) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    signal.addEventListener("abort", () => controller.abort(signal.reason), {
      once: true,
    });
  }
  return controller.signal;
}

// The scope of the current page.
export const page = new PageScope();
