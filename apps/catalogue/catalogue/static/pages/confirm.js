// Confirm the phone number and the email address with their codes.
// Where the browser supports WebOTP, the code of the SMS is offered to
// the page by itself (the SMS ends with the "@host #code" line).
import { api, clearErrors, formValues, say, showError } from "../api.js";
import { page } from "../scope.js";
import { currentUser } from "../session.js";

function showStates(user) {
  document.getElementById("phone-state").textContent = user.phone_confirmed
    ? "confirmed"
    : "not confirmed";
  document.getElementById("email-state").textContent = user.email_confirmed
    ? "confirmed"
    : "not confirmed";
  document.body.dataset.phoneConfirmed = String(user.phone_confirmed);
  document.body.dataset.emailConfirmed = String(user.email_confirmed);
}

function wire(channel, path) {
  const form = document.getElementById(`${channel}-form`);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      const user = await api(`/api/me/${path}/confirm`, {
        method: "POST",
        body: formValues(form),
      });
      showStates(user);
      say(`Your ${channel} is confirmed.`, "ok");
    } catch (error) {
      showError(error, form);
    }
  });
  document
    .getElementById(`${channel}-resend`)
    .addEventListener("click", async () => {
      clearErrors(form);
      try {
        await api(`/api/me/${path}/code`, { method: "POST" });
        say("A new code is on its way.", "ok");
      } catch (error) {
        showError(error, form);
      }
    });
  return form;
}

const phoneForm = wire("phone", "phone");
wire("email", "email");

async function listenForSms() {
  if (!("OTPCredential" in window)) {
    return;
  }
  try {
    const otp = await navigator.credentials.get({
      otp: { transport: ["sms"] },
      signal: page.signal,
    });
    phoneForm.elements.code.value = otp.code;
  } catch {
    // No SMS arrived, or the user declined: they type the code.
  }
}

currentUser.then((user) => {
  if (!user) {
    window.location.assign("/signin");
    return;
  }
  showStates(user);
  listenForSms();
});
