// Forms with data-confirm ask before they are sent (no inline handlers: the pages' CSP allows none).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
