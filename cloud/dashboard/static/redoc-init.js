// Start ReDoc on /redoc from the document named in the page (no inline script).
window.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var root = document.getElementById("redoc");
  Redoc.init(root.getAttribute("data-spec"), { hideDownloadButton: false }, root);
});
