// Barcode scanners type the code and press Enter. Scan fields chain to the next scan field,
// list fields collect several codes before one submit, and after every page load the first
// scan field has focus with its text selected so the next scan replaces it.
(function () {
  "use strict";

  function addToList(input) {
    var value = input.value.trim();
    if (!value) return;
    var form = input.form;
    var name = input.getAttribute("data-scan-name");
    var list = document.getElementById(input.getAttribute("data-scan-list"));
    var existing = form.querySelectorAll('input[type="hidden"][name="' + name + '"]');
    for (var i = 0; i < existing.length; i++) {
      if (existing[i].value === value) { input.value = ""; return; }
    }
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = name;
    hidden.value = value;
    form.appendChild(hidden);
    var item = document.createElement("li");
    item.textContent = value;
    list.appendChild(item);
    var count = document.getElementById(input.getAttribute("data-scan-list") + "-count");
    if (count) count.textContent = String(existing.length + 1);
    input.value = "";
  }

  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Enter" || !(input instanceof HTMLInputElement)) return;
    if (input.hasAttribute("data-scan-list")) {
      event.preventDefault();
      addToList(input);
      input.focus();
      return;
    }
    var nextId = input.getAttribute("data-scan-next");
    if (nextId && input.value.trim()) {
      var next = document.getElementById(nextId);
      if (next) {
        event.preventDefault();
        next.focus();
        if (next.select) next.select();
      }
    }
  });

  // A list form submitted with a code still in the box keeps that code too.
  document.addEventListener("submit", function (event) {
    var inputs = event.target.querySelectorAll("input[data-scan-list]");
    for (var i = 0; i < inputs.length; i++) addToList(inputs[i]);
  }, true);

  window.addEventListener("DOMContentLoaded", function () {
    var first = document.querySelector("input[autofocus]") || document.querySelector("input[data-scan]");
    if (first) {
      first.focus();
      if (first.select) first.select();
    }
  });
})();
