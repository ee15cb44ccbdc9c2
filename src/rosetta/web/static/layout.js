// A wide table scrolls sideways inside its box (.table-wrap): while it does, the box takes the
// keyboard focus (arrow keys scroll it) and is named for screen readers; when it fits, it does not.
(function () {
  "use strict";

  function label(wrap) {
    var card = wrap.closest("section, .card");
    var heading = card && card.querySelector("h2, h1");
    var name = heading ? heading.textContent.replace(/\s+/g, " ").trim() : "Table";
    return name + " (scrolls sideways)";
  }

  function mark() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", label(wrap));
      } else if (wrap.getAttribute("role") === "region") {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
      }
    });
  }

  var pending = 0;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(mark, 150);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mark);
  } else {
    mark();
  }
})();
