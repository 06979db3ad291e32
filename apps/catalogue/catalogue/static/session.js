// Who is signed in: fills the header and shows what they may use.
import { api, Aborted } from "./api.js";

function show(user) {
  const states = new Set([user ? "signed-in" : "anonymous"]);
  if (user && user.can_manage_jobs) {
    states.add("manager");
  }
  for (const element of document.querySelectorAll("[data-when]")) {
    element.hidden = !states.has(element.dataset.when);
  }
  document.getElementById("who-name").textContent = user ? user.email : "";
}

async function load() {
  try {
    return (await api("/api/auth/session")).user;
  } catch (error) {
    if (error instanceof Aborted) {
      throw error;
    }
    return null;
  }
}

export const currentUser = load().then((user) => {
  show(user);
  return user;
});

document.getElementById("sign-out").addEventListener("click", async () => {
  await api("/api/auth/signout", { method: "POST" });
  window.location.assign("/");
});
