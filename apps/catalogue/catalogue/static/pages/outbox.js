// The development outbox: messages the local stand-ins received.
import { api, showError } from "../api.js";
import { page } from "../scope.js";
import { currentUser } from "../session.js";

const list = document.getElementById("messages");

function item(message) {
  const li = document.createElement("li");
  li.className = `message ${message.channel}`;
  const head = document.createElement("p");
  head.className = "meta";
  const what = message.channel === "sms" ? "SMS" : "Email";
  head.textContent = `${what} to ${message.recipient} · ${new Date(message.received_at).toLocaleTimeString()}`;
  const body = document.createElement("pre");
  body.textContent = message.subject
    ? `${message.subject}\n\n${message.body}`
    : message.body;
  li.append(head, body);
  return li;
}

async function refresh() {
  try {
    const messages = await api("/api/outbox");
    list.replaceChildren(...messages.map(item));
  } catch (error) {
    showError(error);
  }
}

document.getElementById("refresh").addEventListener("click", refresh);
currentUser.then((user) => {
  if (!user) {
    window.location.assign("/signin");
    return;
  }
  refresh();
  // Messages arrive from background jobs: look again now and then,
  // until the page is left.
  const timer = setInterval(refresh, 2000);
  page.signal.addEventListener("abort", () => clearInterval(timer));
});
