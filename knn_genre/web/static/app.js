// knn_genre web page: dropping files onto the form, and checking their size before sending.
// The form works without this script; it only adds the drop zone and earlier messages.
// File names are shown with textContent, never as HTML.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("upload");
  var input = document.getElementById("file");
  var drop = form && form.querySelector(".drop");
  var chosen = document.getElementById("chosen");
  if (!form || !input || !drop || !chosen) { return; }
  var maxBytes = Number(form.dataset.maxBytes);
  var maxFiles = Number(form.dataset.maxFiles);

  function megabytes(bytes) { return (bytes / 1e6).toFixed(1) + " MB"; }

  function problem() {
    var files = input.files, total = 0;
    if (!files || files.length === 0) { return "Choose one or more audio files first."; }
    if (files.length > maxFiles) { return files.length + " files chosen; send at most " + maxFiles + " at once."; }
    for (var i = 0; i < files.length; i++) { total += files[i].size; }
    if (total > maxBytes) { return "The files add up to " + megabytes(total) + "; this server takes at most " + megabytes(maxBytes) + " at once."; }
    return null;
  }

  function show() {
    var names = [];
    for (var i = 0; i < input.files.length; i++) { names.push(input.files[i].name + " (" + megabytes(input.files[i].size) + ")"); }
    var message = input.files.length ? problem() : null;
    chosen.textContent = message || names.join(", ");
    chosen.className = message ? "chosen error" : "chosen";
  }

  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (event) { event.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      show();
    }
  });
  form.addEventListener("submit", function (event) {
    var message = problem();
    if (message) {
      event.preventDefault();
      chosen.textContent = message;
      chosen.className = "chosen error";
      return;
    }
    var button = form.querySelector("button");
    button.disabled = true;
    button.textContent = "Analysing…";
  });
  // Coming back to the page from the browser's history shows the form ready again.
  window.addEventListener("pageshow", function () {
    var button = form.querySelector("button");
    button.disabled = false;
    button.textContent = "Find the genre";
  });
});
