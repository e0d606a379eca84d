// Tell the dashboard the browser's time zone, so times without a plant zone are shown in
// it: a cookie the next page load reads. A page drawn in the default zone (UTC, because
// the server did not know the browser's yet) is loaded once more. Nothing else runs here.
(function () {
  "use strict";
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    return;
  }
  // IANA names need no encoding; anything else is not a zone the dashboard would accept.
  if (!/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) return;
  var value = zone;
  var current = document.cookie.split("; ").filter(function (c) { return c.indexOf("tz=") === 0; });
  if (current.length && current[0] === "tz=" + value) return;
  var secure = location.protocol === "https:" ? "; secure" : "";
  document.cookie = "tz=" + value + "; path=/; max-age=31536000; samesite=lax" + secure;
  // Show this page in the zone just learnt, once: only if the cookie was really stored
  // (with cookies off, no reload, so never a loop).
  var stored = document.cookie.split("; ").indexOf("tz=" + value) !== -1;
  if (stored && document.documentElement.getAttribute("data-zone-from") === "default") {
    location.reload();
  }
})();
