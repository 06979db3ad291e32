// Sign in.
import { api, clearErrors, formValues, showError } from "../api.js";
import "../session.js";

const form = document.getElementById("signin-form");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  try {
    await api("/api/auth/signin", { method: "POST", body: formValues(form) });
    window.location.assign("/");
  } catch (error) {
    showError(error, form);
  }
});
