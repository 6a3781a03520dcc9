// Progressive enhancement only: every page works without this file (the pages' CSP allows no inline handlers).
document.documentElement.classList.add("js");

// A delete's question (macros/confirm.html): opening it moves focus to its button; Cancel and Escape close it
// and give focus back; only one is open at a time.
document.addEventListener("toggle", (event) => {
  const details = event.target;
  if (!(details instanceof HTMLDetailsElement) || !details.classList.contains("confirm") || !details.open) {
    return;
  }
  document.querySelectorAll("details.confirm[open]").forEach((other) => {
    if (other !== details) other.open = false;
  });
  if (details.dataset.restoring) {
    delete details.dataset.restoring;
    return;
  }
  const submit = details.querySelector(".confirm-box button[type=submit]");
  if (submit) submit.focus();
}, true);

function closeConfirm(details) {
  details.open = false;
  details.querySelector("summary").focus();
}

document.addEventListener("click", (event) => {
  const cancel = event.target.closest ? event.target.closest("details.confirm .cancel") : null;
  if (cancel) {
    event.preventDefault();
    closeConfirm(cancel.closest("details.confirm"));
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const details = document.activeElement && document.activeElement.closest
    ? document.activeElement.closest("details.confirm[open]") : null;
  if (details) closeConfirm(details);
  const layout = document.querySelector(".layout.menu-open");
  if (layout) setMenu(layout, false);
});

// A part of the page that refreshes itself keeps an open question open, and its focus, across the swap.
let openQuestion = null;
document.addEventListener("htmx:beforeSwap", (event) => {
  const open = event.detail.target ? event.detail.target.querySelector("details.confirm[open]") : null;
  openQuestion = null;
  if (open && open.id) {
    const active = document.activeElement;
    const focused = open.contains(active) ? [...open.querySelectorAll("summary, button")].indexOf(active) : -1;
    openQuestion = {id: open.id, focused};
  }
});
document.addEventListener("htmx:afterSwap", () => {
  if (!openQuestion) return;
  const again = document.getElementById(openQuestion.id);
  if (again && again.classList.contains("confirm")) {
    again.dataset.restoring = "yes";
    again.open = true;
    const focusable = again.querySelectorAll("summary, button");
    if (openQuestion.focused >= 0 && focusable[openQuestion.focused]) focusable[openQuestion.focused].focus();
  }
  openQuestion = null;
});

// The Menu button of narrow screens folds the sidebar open and shut (without JavaScript it links to #menu).
function setMenu(layout, open) {
  layout.classList.toggle("menu-open", open);
  const toggle = layout.querySelector(".menu-toggle");
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
}

document.addEventListener("click", (event) => {
  const toggle = event.target.closest ? event.target.closest(".menu-toggle") : null;
  if (!toggle) return;
  event.preventDefault();
  const layout = toggle.closest(".layout");
  setMenu(layout, !layout.classList.contains("menu-open"));
  if (layout.classList.contains("menu-open")) {
    const first = layout.querySelector(".sidebar a");
    if (first) first.focus();
  }
});

// Messages a page starts with are read out once it has loaded (a live region announces changes, not what it
// held when the page loaded), from the live region, leaving the messages on the page as they are.
document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live-status");
  const text = [...document.querySelectorAll(".flashes .flash")].map((flash) => flash.textContent.trim()).join(" ");
  if (live && text) setTimeout(() => { live.textContent = text; }, 150);
});

// A part of a page that refreshes itself (an operation's progress) says what changed, from its data-announce,
// in the live region.
const announced = new Map();
function announceChanges(speak) {
  const live = document.getElementById("live-status");
  document.querySelectorAll("[data-announce]").forEach((element) => {
    const text = element.dataset.announce;
    const key = element.id || text;
    if (announced.get(key) !== text) {
      announced.set(key, text);
      if (speak && live) live.textContent = text;
    }
  });
}
document.addEventListener("DOMContentLoaded", () => announceChanges(false));
document.addEventListener("htmx:afterSettle", () => announceChanges(true));

// A table wider than its box scrolls inside it: the box takes the keyboard focus (arrow keys scroll it) when
// nothing inside it can.
function focusableScrollers() {
  document.querySelectorAll(".table-scroll, table.grid").forEach((box) => {
    const scrolls = box.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX !== "visible";
    if (scrolls && !box.hasAttribute("tabindex")) {
      box.setAttribute("tabindex", "0");
      box.dataset.scrollFocus = "yes";
    } else if (!scrolls && box.dataset.scrollFocus) {
      box.removeAttribute("tabindex");
      delete box.dataset.scrollFocus;
    }
  });
}
document.addEventListener("DOMContentLoaded", focusableScrollers);
document.addEventListener("htmx:afterSettle", focusableScrollers);
window.addEventListener("resize", focusableScrollers);

// Generate, after every field for a new password (data-generate, from app/blueprints/passwords.py): fills it
// (and its confirmation field, data-generate-confirm) with a strong password and shows that password once,
// with a Copy button. 20 characters from 64, none that read alike (0/O, 1/l/I), drawn with
// crypto.getRandomValues without bias, with a lowercase and an uppercase letter, a digit and a sign.
const PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789-_.!@#%+=";
const PASSWORD_LENGTH = 20;

function generatePassword() {
  const n = PASSWORD_ALPHABET.length;
  const limit = Math.floor(0x100000000 / n) * n;
  for (;;) {
    let password = "";
    while (password.length < PASSWORD_LENGTH) {
      const values = crypto.getRandomValues(new Uint32Array(PASSWORD_LENGTH));
      for (const value of values) {
        if (value < limit && password.length < PASSWORD_LENGTH) password += PASSWORD_ALPHABET[value % n];
      }
    }
    if (/[a-z]/.test(password) && /[A-Z]/.test(password) && /[2-9]/.test(password) && /[^A-Za-z2-9]/.test(password)) {
      return password;
    }
  }
}

function addPasswordGenerators(root) {
  root.querySelectorAll("input[data-generate]:not([data-generator])").forEach((input) => {
    input.dataset.generator = "yes";
    const box = document.createElement("div");
    box.className = "password-generator";
    const generate = document.createElement("button");
    generate.type = "button";
    generate.className = "generate-password";
    generate.textContent = "Generate";
    const label = input.labels && input.labels[0] ? input.labels[0].querySelector("span") : null;
    generate.setAttribute("aria-label", `Generate a password for ${label ? label.textContent : "this field"}`);
    const shown = document.createElement("span");
    shown.className = "generated-password";
    shown.hidden = true;
    const value = document.createElement("code");
    value.id = `${input.id}-generated`;
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy-password";
    copy.textContent = "Copy";
    copy.setAttribute("aria-label", "Copy the generated password");
    shown.append("Generated, shown only now: ", value, " ", copy);
    box.append(generate, " ", shown);
    (input.closest("label") || input).after(box);

    generate.addEventListener("click", () => {
      const password = generatePassword();
      input.value = password;
      const confirm = input.dataset.generateConfirm ? document.getElementById(input.dataset.generateConfirm) : null;
      if (confirm) confirm.value = password;
      value.textContent = password;
      shown.hidden = false;
      copy.textContent = "Copy";
      const live = document.getElementById("live-status");
      if (live) live.textContent = "A password was generated and filled in; it is shown next to the Generate button.";
    });
    copy.addEventListener("click", () => {
      const done = () => { copy.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(value.textContent).then(done, () => { copy.textContent = "Select and copy it"; });
      } else {
        const range = document.createRange();
        range.selectNodeContents(value);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        copy.textContent = document.execCommand("copy") ? "Copied" : "Select and copy it";
      }
    });
    // Shown once: gone when the form is sent or the field is typed into.
    input.addEventListener("input", () => { shown.hidden = true; value.textContent = ""; });
    if (input.form) input.form.addEventListener("submit", () => { shown.hidden = true; value.textContent = ""; });
  });
}
addPasswordGenerators(document);
document.addEventListener("htmx:load", (event) => addPasswordGenerators(event.detail.elt));
