// fetch() for the JSON API: every call takes the signal of a scope, and
// errors come back with the server's field messages.
import { page } from "./scope.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `request failed (${status})`);
    this.status = status;
    this.fields = body.fields || {};
  }
}

// Raised instead of whatever fetch rejects with when the signal was
// aborted (Chromium rejects with the abort reason itself).
export class Aborted extends Error {
  constructor(reason) {
    super(`aborted: ${reason}`);
    this.reason = reason;
  }
}

export async function api(path, { method = "GET", body, signal } = {}) {
  signal = signal || page.signal;
  const init = {
    method,
    signal,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (signal.aborted) {
      throw new Aborted(signal.reason);
    }
    throw error;
  }
  if (response.status === 204) {
    return null;
  }
  const data = await response
    .json()
    .catch(() => ({ detail: response.statusText }));
  if (!response.ok) {
    throw new ApiError(response.status, data);
  }
  return data;
}

export function say(text, kind = "") {
  const status = document.getElementById("status");
  if (status) {
    status.textContent = text;
    status.dataset.kind = kind;
  }
}

// Show an error: field messages next to their fields, the rest on top.
export function showError(error, form) {
  if (error instanceof Aborted) {
    return;
  }
  if (form) {
    clearErrors(form);
  }
  if (error instanceof ApiError) {
    for (const [name, text] of Object.entries(error.fields)) {
      const slot = form && form.querySelector(`[data-for="${name}"]`);
      if (slot) {
        slot.textContent = text;
      }
    }
    say(error.message, "error");
  } else {
    say(`Something went wrong: ${error.message}`, "error");
  }
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field-error")) {
    slot.textContent = "";
  }
  say("");
}

export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}
