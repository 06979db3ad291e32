// Product editor: create or change one product.
import { api, clearErrors, formValues, say, showError } from "../api.js";
import { currentUser } from "../session.js";

const form = document.getElementById("product-form");
const remove = document.getElementById("delete");
const match = window.location.pathname.match(/^\/products\/(\d+)$/);
const productId = match ? Number(match[1]) : null;

async function load() {
  const categories = await api("/api/categories?per_page=200");
  const select = form.elements.category_id;
  for (const item of categories.items) {
    select.append(new Option(item.name, item.id));
  }
  if (productId === null) {
    return;
  }
  const product = await api(`/api/products/${productId}`);
  form.elements.name.value = product.name;
  form.elements.price.value = product.price;
  form.elements.description.value = product.description;
  select.value = product.category ? String(product.category.id) : "";
  const user = await currentUser;
  remove.hidden = !user;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  const values = formValues(form);
  const body = {
    name: values.name,
    price: values.price,
    description: values.description,
    category_id: values.category_id ? Number(values.category_id) : null,
  };
  try {
    const saved = await api(
      productId === null ? "/api/products" : `/api/products/${productId}`,
      { method: productId === null ? "POST" : "PUT", body },
    );
    say(`Saved “${saved.name}”.`, "ok");
    if (productId === null) {
      window.location.assign(`/products/${saved.id}`);
    }
  } catch (error) {
    showError(error, form);
  }
});

remove.addEventListener("click", async () => {
  try {
    await api(`/api/products/${productId}`, { method: "DELETE" });
    window.location.assign("/");
  } catch (error) {
    showError(error, form);
  }
});

load().catch((error) => showError(error, form));
