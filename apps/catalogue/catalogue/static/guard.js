// Warns before navigation throws away unsaved changes. Closing or
// reloading the tab gets the browser's own question (beforeunload); a
// link inside the app opens the page's "discard?" dialog instead. When
// nothing changed, nobody is asked anything.

export function guardUnsavedChanges({ isDirty, dialog }) {
  window.addEventListener("beforeunload", (event) => {
    if (isDirty()) {
      event.preventDefault();
      // Older browsers show the question only with a returnValue.
      event.returnValue = "";
    }
  });

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[href]");
    const newTab =
      event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey;
    if (!link || newTab || link.target || event.defaultPrevented) {
      return; // this page stays: nothing is lost
    }
    if (!isDirty()) {
      return;
    }
    event.preventDefault();
    confirmDiscard(dialog).then((discard) => {
      if (discard) {
        window.location.assign(link.href);
      }
    });
  });
}

// Opens `dialog` (with #stay and #leave buttons); resolves true to
// discard the changes.
export function confirmDiscard(dialog) {
  return new Promise((resolve) => {
    const stay = dialog.querySelector("#stay");
    const leave = dialog.querySelector("#leave");
    const done = (discard) => {
      stay.removeEventListener("click", onStay);
      leave.removeEventListener("click", onLeave);
      dialog.close();
      resolve(discard);
    };
    const onStay = () => done(false);
    const onLeave = () => done(true);
    stay.addEventListener("click", onStay);
    leave.addEventListener("click", onLeave);
    dialog.showModal();
  });
}
