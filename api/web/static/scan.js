// Barcode scanners type the code and press Enter. Scan fields chain to the next scan field,
// list fields collect several codes before one submit, and after every page load the first
// scan field has focus with its text selected so the next scan replaces it.
(function () {
  "use strict";

  function say(listId, text) {
    var status = document.getElementById(listId + "-status");
    if (status) status.textContent = text;
  }

  function recount(form, name, listId) {
    var count = document.getElementById(listId + "-count");
    var n = form.querySelectorAll('input[type="hidden"][name="' + name + '"]').length;
    if (count) count.textContent = String(n);
    return n;
  }

  // One scanned code: its text, a button that takes it out again, and the hidden input the form
  // sends. Pages render the same markup for codes that come back after a refused submit.
  function listItem(name, value) {
    var item = document.createElement("li");
    item.setAttribute("data-value", value);
    var code = document.createElement("span");
    code.textContent = value;
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", "Remove " + value);
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = name;
    hidden.value = value;
    item.appendChild(code);
    item.appendChild(remove);
    item.appendChild(hidden);
    return item;
  }

  function addToList(input, quiet) {
    var value = input.value.trim();
    if (!value) return;
    var form = input.form;
    var name = input.getAttribute("data-scan-name");
    var listId = input.getAttribute("data-scan-list");
    var list = document.getElementById(listId);
    var existing = form.querySelectorAll('input[type="hidden"][name="' + name + '"]');
    for (var i = 0; i < existing.length; i++) {
      if (existing[i].value === value) {
        input.value = "";
        if (!quiet) say(listId, value + " is already in the list: scanned once.");
        return;
      }
    }
    list.appendChild(listItem(name, value));
    var n = recount(form, name, listId);
    if (!quiet) say(listId, "Added " + value + ": " + n + " scanned.");
    input.value = "";
  }

  document.addEventListener("click", function (event) {
    var button = event.target;
    if (!(button instanceof HTMLButtonElement) || !button.classList.contains("remove")) return;
    var item = button.closest("li");
    var list = item && item.parentElement;
    if (!item || !list) return;
    var input = document.querySelector('input[data-scan-list="' + list.id + '"]');
    var value = item.getAttribute("data-value");
    item.remove();
    if (input) {
      recount(input.form, input.getAttribute("data-scan-name"), list.id);
      say(list.id, "Removed " + value + ".");
      input.focus();
    }
  });

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
    for (var i = 0; i < inputs.length; i++) addToList(inputs[i], true);
  }, true);

  window.addEventListener("DOMContentLoaded", function () {
    var first = document.querySelector("input[autofocus]") || document.querySelector("input[data-scan]");
    if (first) {
      first.focus();
      if (first.select) first.select();
    }
  });
})();
