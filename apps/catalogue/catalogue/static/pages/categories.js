// Categories with an add/edit dialog. The dialog guards its unsaved
// changes: leaving the page (a link, closing the tab) or cancelling
// asks first, but only when something was changed.
import { api, clearErrors, say, showError } from "../api.js";
import { confirmDiscard, guardUnsavedChanges } from "../guard.js";
import { currentUser } from "../session.js";

const list = document.getElementById("categories");
const dialog = document.getElementById("category-dialog");
const form = document.getElementById("category-form");
const leaveDialog = document.getElementById("leave-dialog");
const remove = document.getElementById("remove");
let editing = null;
let snapshot = null;
let user = null;

function values() {
  return {
    name: form.elements.name.value,
    colour: form.elements.colour.value.toLowerCase(),
  };
}

function isDirty() {
  if (!dialog.open || snapshot === null) {
    return false;
  }
  const now = values();
  return now.name !== snapshot.name || now.colour !== snapshot.colour;
}

function open(category) {
  editing = category;
  clearErrors(form);
  form.elements.name.value = category ? category.name : "";
  form.elements.colour.value = category ? category.colour : "#3366cc";
  remove.hidden = !category;
  dialog.querySelector("h2").textContent = category
    ? "Edit category"
    : "New category";
  snapshot = values();
  // Not modal: the rest of the page stays usable, and so do its links,
  // which is why the unsaved-changes guard exists.
  dialog.show();
  form.elements.name.focus();
}

function close() {
  snapshot = null;
  dialog.close();
}

async function cancel() {
  if (!isDirty() || (await confirmDiscard(leaveDialog))) {
    close();
  }
}

function chip(category) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "chip";
  button.style.setProperty("--chip", category.colour);
  button.textContent = `${category.name} (${category.products})`;
  button.disabled = !user;
  button.addEventListener("click", () => open(category));
  item.append(button);
  return item;
}

async function load() {
  const result = await api("/api/categories?per_page=200");
  list.replaceChildren(...result.items.map(chip));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  const path = editing ? `/api/categories/${editing.id}` : "/api/categories";
  try {
    const saved = await api(path, {
      method: editing ? "PUT" : "POST",
      body: values(),
    });
    close();
    say(`Saved “${saved.name}”.`, "ok");
    await load();
  } catch (error) {
    showError(error, form);
  }
});

remove.addEventListener("click", async () => {
  try {
    await api(`/api/categories/${editing.id}`, { method: "DELETE" });
    close();
    await load();
  } catch (error) {
    showError(error, form);
  }
});

document.getElementById("cancel").addEventListener("click", cancel);
dialog.addEventListener("keydown", (event) => {
  // Escape: ask first, like the Cancel button.
  if (event.key === "Escape") {
    event.preventDefault();
    cancel();
  }
});
document.getElementById("add").addEventListener("click", () => open(null));
guardUnsavedChanges({ isDirty, dialog: leaveDialog });

currentUser
  .then((found) => {
    user = found;
    return load();
  })
  .catch((error) => showError(error));
