// Export: start the job, watch its progress, download the file.
import { api, say, showError } from "../api.js";
import { page } from "../scope.js";
import { currentUser } from "../session.js";

const list = document.getElementById("exports");
let timer = null;

function item(exp) {
  const li = document.createElement("li");
  li.dataset.status = exp.status;
  const label = document.createElement("span");
  label.textContent = `${new Date(exp.created_at).toLocaleTimeString()} · ${exp.status} · ${exp.progress}%`;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = exp.progress;
  const note = document.createElement("span");
  note.className = "dev";
  note.textContent = exp.message;
  li.append(label, bar, note);
  if (exp.download) {
    const link = document.createElement("a");
    link.href = exp.download;
    link.textContent = `Download (${exp.rows} products)`;
    li.append(link);
  }
  return li;
}

async function refresh() {
  try {
    const exports = await api("/api/exports");
    list.replaceChildren(...exports.map(item));
    const busy = exports.some((e) => ["queued", "running"].includes(e.status));
    clearTimeout(timer);
    if (busy) {
      timer = setTimeout(refresh, 500);
    }
  } catch (error) {
    showError(error);
  }
}

document.getElementById("start").addEventListener("click", async () => {
  try {
    await api("/api/exports", { method: "POST" });
    say("Export started.", "ok");
    await refresh();
  } catch (error) {
    showError(error);
  }
});

page.signal.addEventListener("abort", () => clearTimeout(timer));
currentUser.then((user) => {
  if (!user) {
    window.location.assign("/signin");
    return;
  }
  refresh();
});
