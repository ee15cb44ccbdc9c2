// Rosetta web UI: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // A select marked data-autosubmit submits its form on an explicit choice: picked with the
  // mouse (or set by a script), or Enter. Arrow keys on the closed select change it at each
  // press: they only move the choice, and Enter (or the form's button) goes there.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    var keyed = false;
    function go() {
      if (!select.form) { return; }
      if (select.form.requestSubmit) { select.form.requestSubmit(); } else { select.form.submit(); }
    }
    select.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        keyed = false;
        go();
      } else if (event.key !== "Tab") {
        keyed = true;
      }
    });
    select.addEventListener("pointerdown", function () { keyed = false; });
    select.addEventListener("change", function () {
      if (!keyed) { go(); }
    });
  });

  // A table page showing a folded older version: scroll the fold's own box to it.
  document.querySelectorAll("details.timeline-older[open] li.current").forEach(function (item) {
    var box = item.closest(".timeline-scroll");
    if (box) {
      box.scrollTop += item.getBoundingClientRect().top - box.getBoundingClientRect().top - 24;
    }
  });

  // "Select all" checkbox of the available tables.
  document.querySelectorAll("input[data-check-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      var form = all.closest("form");
      if (!form) { return; }
      form.querySelectorAll("input[type=checkbox][name=tables]").forEach(function (box) {
        box.checked = all.checked;
      });
    });
  });

  // A button with data-busy says so while its form is submitted (a sync can take a while).
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.dataset && button.dataset.busy) {
      button.dataset.label = button.textContent;
      button.textContent = button.dataset.busy;
      button.classList.add("busy");
    }
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[data-label]").forEach(function (button) {
      button.textContent = button.dataset.label;
      button.classList.remove("busy");
    });
  });

  // Test connection without leaving the form (so a typed password is not lost).
  document.querySelectorAll("form[data-test-form]").forEach(function (form) {
    var button = form.querySelector("[data-test-button]");
    var out = form.querySelector("[data-test-result]");
    if (!button || !out || !window.fetch || !window.FormData) { return; }

    function show(result) {
      out.hidden = false;
      out.className = "test-result " + (result.ok ? "ok" : "bad");
      out.textContent = "";
      var title = document.createElement("strong");
      title.textContent = result.title || (result.ok ? "Connected" : "Test failed");
      out.appendChild(title);
      var list = document.createElement("ul");
      (result.lines || []).forEach(function (line) {
        var item = document.createElement("li");
        item.textContent = line;
        list.appendChild(item);
      });
      out.appendChild(list);
    }

    button.addEventListener("click", function (event) {
      event.preventDefault();
      var data = new FormData(form);
      data.set("action", "test");
      var label = button.textContent;
      button.disabled = true;
      button.textContent = "Testing…";
      // form.action would be the buttons named "action": read the attribute.
      fetch(form.getAttribute("action") || window.location.pathname, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-Rosetta-Fetch": "1" }
      }).then(function (response) {
        return response.json().catch(function () {
          return {
            ok: false,
            title: "Test failed",
            lines: ["Unexpected answer (HTTP " + response.status + "): reload the page and try again."]
          };
        });
      }).then(show, function (error) {
        show({ ok: false, title: "Test failed", lines: [String(error)] });
      }).then(function () {
        button.disabled = false;
        button.textContent = label;
      });
    });
  });
})();
