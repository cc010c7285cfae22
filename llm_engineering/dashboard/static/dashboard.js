// Live parts of the pages: a section with data-stream is replaced by what the server sends
// on that EventSource (HTML it rendered and escaped). htmx requests carry the CSRF token.
"use strict";

(function () {
  const csrf = document.body.dataset.csrf || "";
  document.body.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["X-CSRF-Token"] = csrf;
  });

  window.llmEng = window.llmEng || { updates: 0 };

  document.querySelectorAll("section[data-stream]").forEach((section) => {
    const source = new EventSource(section.dataset.stream);
    const replace = (event) => {
      section.innerHTML = event.data;
      if (window.htmx) window.htmx.process(section);
      window.llmEng.updates += 1;
      section.dataset.updates = String(window.llmEng.updates);
    };
    source.addEventListener("overview", replace);
    source.addEventListener("jobs", replace);
    window.addEventListener("beforeunload", () => source.close());
  });
})();
