// warden console: the audit page's verification progress, polled from /ui/audit/verify/status
// while a verification runs; once it ends the page is loaded again to show the result.
"use strict";
(function () {
  var el = document.getElementById("verify-progress");
  if (!el || !window.fetch) return;
  var src = el.getAttribute("data-src");
  function poll() {
    fetch(src, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("status " + r.status);
      return r.json();
    }).then(function (st) {
      if (st.state === "queued" || st.state === "running") {
        el.textContent = "Verifying the log (asked by " + st.by + "): " + st.checked + " of " + st.total + " events checked…";
        setTimeout(poll, 500);
        return;
      }
      window.location.reload();
    }).catch(function () {
      el.textContent = "Lost touch with the server: reload the page to see the verification.";
    });
  }
  setTimeout(poll, 250);
})();
