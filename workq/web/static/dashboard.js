// workq dashboard: keeps the page live and sends its forms without a reload.
// Without JS the page still works: forms post and are redirected back, and a <noscript> meta tag refreshes.
// Served from 'self' only (the Content-Security-Policy forbids inline script); the CSRF token comes from a <meta>.
"use strict";

(() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";
  const csrfToken = meta("csrf-token");
  const refreshMs = Number(meta("refresh-ms")) || 4000;

  const toggle = document.getElementById("live-toggle");
  const toggleLabel = document.getElementById("live-label");
  const status = document.getElementById("live-status");
  const toast = document.getElementById("toast");
  const dialog = document.getElementById("confirm-dialog");

  let live = true;
  let generation = 0; // a response older than the newest request is dropped, so a stale page never wins
  let inFlight = 0;
  let timer = 0;
  let toastTimer = 0;

  function setStatus(text, offline = false) {
    status.textContent = text;
    toggle.classList.toggle("offline", offline);
  }

  function timeNow() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function userIsBusy() {
    // Do not pull the page from under someone reading a dialog or selecting text to copy.
    const selection = window.getSelection();
    return dialog.open || (selection !== null && selection.toString() !== "");
  }

  async function refresh(force = false) {
    if (!force && (!live || document.hidden || userIsBusy() || inFlight > 0)) {
      return;
    }
    const mine = ++generation;
    inFlight += 1;
    try {
      const response = await fetch(window.location.href, {
        headers: { Accept: "text/html" },
        cache: "no-store",
        credentials: "same-origin",
      });
      if (mine !== generation) {
        return;
      }
      if (response.status === 503) {
        setStatus("Redis unreachable", true);
        return;
      }
      if (!response.ok) {
        setStatus(`refresh failed (${response.status})`, true);
        return;
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      if (mine !== generation || (!force && userIsBusy())) {
        return;
      }
      for (const id of ["main", "nav"]) {
        const current = document.getElementById(id);
        const replacement = fresh.getElementById(id);
        if (current && replacement) {
          current.replaceChildren(...replacement.childNodes);
        }
      }
      document.title = fresh.title;
      setStatus(`updated ${timeNow()}`);
    } catch {
      setStatus("dashboard unreachable", true);
    } finally {
      inFlight -= 1;
    }
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(async () => {
      await refresh();
      schedule();
    }, refreshMs);
  }

  function showToast(text, isError = false) {
    toast.textContent = text;
    toast.classList.toggle("error", isError);
    toast.hidden = false;
    window.clearTimeout(toastTimer);
    toastTimer = window.setTimeout(() => { toast.hidden = true; }, isError ? 8000 : 3500);
  }

  function confirmed(message) {
    return new Promise((resolve) => {
      document.getElementById("confirm-message").textContent = message;
      dialog.returnValue = "";
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
      dialog.showModal();
      dialog.querySelector('button[value="cancel"]').focus();
    });
  }

  async function send(form) {
    const body = new URLSearchParams(new FormData(form));
    body.delete("next"); // without `next` the endpoint answers JSON instead of redirecting
    const button = form.querySelector("button");
    if (button) {
      button.disabled = true;
    }
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body,
        headers: { Accept: "application/json", "X-CSRF-Token": csrfToken },
        credentials: "same-origin",
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        const done = form.dataset.done || "Done";
        showToast(done.replace("{count}", String(answer.count ?? "")));
      } else {
        showToast(answer.error || `Failed (${response.status})`, true);
      }
    } catch {
      showToast("Could not reach the dashboard; nothing was changed.", true);
    } finally {
      if (button) {
        button.disabled = false;
      }
    }
    await refresh(true);
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method !== "post") {
      return; // the confirm dialog's own form (method="dialog") closes it natively
    }
    event.preventDefault();
    if (form.dataset.confirm && !(await confirmed(form.dataset.confirm))) {
      return;
    }
    await send(form);
  });

  toggle.addEventListener("click", () => {
    live = !live;
    toggle.setAttribute("aria-pressed", String(live));
    toggleLabel.textContent = live ? "Live" : "Paused";
    setStatus(live ? "resumed" : "auto-refresh paused");
    if (live) {
      refresh();
    }
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      refresh();
    }
  });

  toggle.hidden = false;
  setStatus(`updated ${timeNow()}`);
  schedule();
})();
