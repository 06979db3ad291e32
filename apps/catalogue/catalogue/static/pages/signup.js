// Sign up, then confirm the phone.
import { api, clearErrors, formValues, showError } from "../api.js";
import "../session.js";

const form = document.getElementById("signup-form");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  try {
    await api("/api/auth/signup", { method: "POST", body: formValues(form) });
    window.location.assign("/confirm");
  } catch (error) {
    showError(error, form);
  }
});
