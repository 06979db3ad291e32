// Product list: search as you type. Each keystroke's search aborts the
// one before it, and leaving the page aborts whatever is in flight.
import { api, Aborted, say, showError } from "../api.js";
import { page } from "../scope.js";
import "../session.js";

const search = document.getElementById("search");
const category = document.getElementById("category");
const slow = document.getElementById("slow");
const rows = document.getElementById("rows");
const pageInfo = document.getElementById("page-info");
const previous = document.getElementById("previous");
const next = document.getElementById("next");
const nextSearch = page.latest();
let pageNumber = 1;
let timer = null;

const params = new URLSearchParams(window.location.search);
if (slow && params.has("slow")) {
  slow.value = params.get("slow");
}
search.value = params.get("q") || "";

function row(product) {
  const tr = document.createElement("tr");
  const name = document.createElement("td");
  const link = document.createElement("a");
  link.href = `/products/${product.id}`;
  link.textContent = product.name;
  name.append(link);
  const group = document.createElement("td");
  if (product.category) {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.dataset.colour = product.category.colour;
    chip.textContent = product.category.name;
    group.append(chip);
  }
  const price = document.createElement("td");
  price.className = "num";
  price.textContent = product.price;
  tr.append(name, group, price);
  return tr;
}

async function run() {
  const query = new URLSearchParams({
    q: search.value.trim(),
    page: String(pageNumber),
    per_page: "20",
  });
  if (category.value) {
    query.set("category_id", category.value);
  }
  const seconds = slow ? Number(slow.value) || 0 : 0;
  if (seconds > 0) {
    query.set("slow", String(seconds));
  }
  document.body.dataset.searching = "true";
  say(seconds > 0 ? `Searching (slowly, ${seconds} s)…` : "Searching…");
  try {
    const result = await api(`/api/products?${query}`, {
      signal: nextSearch(),
    });
    rows.replaceChildren(...result.items.map(row));
    for (const chip of rows.querySelectorAll(".chip")) {
      chip.style.setProperty("--chip", chip.dataset.colour);
    }
    pageInfo.textContent = `page ${result.page} of ${result.pages} · ${result.total} products`;
    previous.disabled = result.page <= 1;
    next.disabled = result.page >= result.pages;
    say("");
    document.body.dataset.searching = "false";
  } catch (error) {
    if (error instanceof Aborted) {
      console.info(`search ${query} aborted (${error.reason})`);
      return;
    }
    document.body.dataset.searching = "false";
    showError(error);
  }
}

function soon() {
  clearTimeout(timer);
  pageNumber = 1;
  timer = setTimeout(run, 150);
}

search.addEventListener("input", soon);
category.addEventListener("change", soon);
document.getElementById("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(timer);
  run();
});
previous.addEventListener("click", () => {
  pageNumber -= 1;
  run();
});
next.addEventListener("click", () => {
  pageNumber += 1;
  run();
});

async function loadCategories() {
  try {
    const result = await api("/api/categories?per_page=200");
    for (const item of result.items) {
      category.append(new Option(item.name, item.id));
    }
  } catch (error) {
    showError(error);
  }
}

loadCategories();
run();
