// Copy to clipboard for the console's copy buttons. A button with
// data-copy copies that text; one with data-ref copies the pull command of
// that reference for the client chosen in #tool (the same commands the
// server renders in pullCommands). The text copied is kept in the button's
// data-copied. Nothing else runs here.
(function () {
  "use strict";
  function pullCommand(tool, ref, dir) {
    var repo = ref.replace(/[@:][^/]*$/, "");
    var base = repo.slice(repo.lastIndexOf("/") + 1);
    var out = dir ? base + "-" + dir : base;
    var plain = document.body.hasAttribute("data-plain-http");
    switch (tool) {
      case "docker": return "docker pull " + ref;
      case "skopeo": return "skopeo copy " + (plain ? "--src-tls-verify=false " : "") + "docker://" + ref + " oci:" + out;
      case "crane": return "crane pull " + (plain ? "--insecure " : "") + "--format=oci " + ref + " " + out;
      default: return "podman pull " + (plain ? "--tls-verify=false " : "") + ref;
    }
  }
  function fallbackCopy(text) {
    // Clipboard API needs a secure context; plain-HTTP registries are common.
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button.copy");
    if (!b) return;
    var text = b.dataset.copy;
    if (b.dataset.ref) {
      var tool = document.getElementById("tool");
      text = pullCommand(tool ? tool.value : "podman", b.dataset.ref, b.dataset.dir || "");
    }
    var status = document.getElementById("copy-status");
    copy(text).then(function () {
      b.dataset.copied = text;
      if (status) status.textContent = "Copied: " + text;
    }, function () {
      if (status) status.textContent = "Copying failed; select the text instead: " + text;
    });
  });
}());
