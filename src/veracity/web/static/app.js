// Veracity web UI: progressive enhancement only. Every page works without this file;
// it adds drag-and-drop, upload progress, live job progress, the timeline readout and the
// face-crop viewer. No third-party code, no network requests beyond our own origin.
"use strict";

(function () {
  function $(sel, root) { return (root || document).querySelector(sel); }

  // ------------------------------------------------------------ analyze: drop zone + upload
  function setupAnalyze() {
    var form = $("#analyze-form");
    if (!form) return;
    var drop = $("#drop"), input = $("#file"), chosen = $("#file-chosen");
    var status = $("#upload-status"), bar = $("#upload-progress"), submit = $("#analyze-submit");
    function showChosen() {
      chosen.textContent = input.files && input.files.length ? "Selected: " + input.files[0].name : "";
    }
    input.addEventListener("change", showChosen);
    ["dragenter", "dragover"].forEach(function (ev) {
      drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (ev) {
      drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        showChosen();
      }
    });
    form.addEventListener("submit", function (e) {
      var hasFile = input.files && input.files.length;
      var url = $("#url").value.trim();
      if (!hasFile && !url) {
        e.preventDefault();
        status.textContent = "Choose a file or paste a URL to analyze.";
        input.focus();
        return;
      }
      if (!window.XMLHttpRequest || !window.FormData) return; // plain form post
      e.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      submit.disabled = true;
      status.textContent = hasFile ? "Uploading…" : "Submitting…";
      if (hasFile) bar.hidden = false;
      xhr.upload.addEventListener("progress", function (ev) {
        if (ev.lengthComputable) {
          var pct = Math.round(100 * ev.loaded / ev.total);
          bar.value = pct;
          status.textContent = "Uploading… " + pct + " %";
        }
      });
      xhr.addEventListener("load", function () {
        if (xhr.status < 400 && /\/jobs\//.test(xhr.responseURL)) {
          status.textContent = "Uploaded. Opening the job…";
          window.location.assign(xhr.responseURL);
          return;
        }
        submit.disabled = false;
        bar.hidden = true;
        var msg = "The server refused the request (" + xhr.status + ").";
        try {
          var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
          var p = doc.querySelector("[role=alert] p, .alert");
          if (p) msg = p.textContent.trim();
        } catch (err) { /* keep the generic message */ }
        status.textContent = msg;
        status.focus && status.setAttribute("tabindex", "-1");
        status.focus();
      });
      xhr.addEventListener("error", function () {
        submit.disabled = false;
        status.textContent = "Upload failed: the server could not be reached.";
      });
      xhr.send(new FormData(form));
    });
  }

  // ------------------------------------------------------------ job progress (polling)
  function setupProgress() {
    var box = $("#job[data-job-status-url]");
    if (!box || !$("#job-progress")) return;
    var url = box.getAttribute("data-job-status-url");
    var stage = $("#job-stage"), pct = $("#job-pct"), bar = $("#job-progress");
    function tick() {
      fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        if (!r.ok) throw new Error("status " + r.status);
        return r.json();
      }).then(function (s) {
        if (s.finished) { window.location.replace(box.getAttribute("data-job-url")); return; }
        stage.textContent = s.stage;
        if (typeof s.progress === "number") {
          var p = Math.round(100 * s.progress);
          bar.value = p;
          pct.textContent = p + " %";
        }
        setTimeout(tick, 700);
      }).catch(function () { setTimeout(tick, 2000); });
    }
    setTimeout(tick, 400);
  }

  // ------------------------------------------------------------ timeline readout
  function setupTimeline() {
    var chart = $("[data-timeline]");
    var data = $("#timeline-data");
    if (!chart || !data) return;
    var svg = $("svg", chart), cursor = $(".tl-cursor", chart);
    var points = JSON.parse(data.textContent || "[]");
    if (!svg || !points.length) return;
    var left = +svg.getAttribute("data-left"), plotW = +svg.getAttribute("data-plot-w");
    var span = +svg.getAttribute("data-span"), width = +svg.getAttribute("data-width");
    var framesUrl = chart.getAttribute("data-frames-url");
    var img = $("#tl-frame"), text = $("#tl-text");
    var current = -1, frameTimer = null;
    if (img) {
      img.addEventListener("error", function () {
        img.hidden = true;
        var note = document.createElement("div");
        note.className = "small muted";
        note.textContent = "No frame available for this moment.";
        text.appendChild(note);
      });
    }

    function nearest(t) {
      var best = 0, bestD = Infinity;
      for (var i = 0; i < points.length; i++) {
        var d = Math.abs(points[i].t - t);
        if (d < bestD) { bestD = d; best = i; }
      }
      return best;
    }
    function show(i) {
      if (i < 0 || i >= points.length) return;
      current = i;
      var p = points[i];
      var scale = svg.getBoundingClientRect().width / width;
      cursor.hidden = false;
      cursor.style.left = ((left + plotW * Math.min(p.t, span) / span) * scale - 1) + "px";
      var rows = Object.keys(p.scores).map(function (k) {
        var tr = document.createElement("tr");
        var a = document.createElement("td"); a.textContent = k;
        var b = document.createElement("td"); b.textContent = p.scores[k].toFixed(3);
        tr.appendChild(a); tr.appendChild(b);
        return tr;
      });
      text.textContent = "";
      var head = document.createElement("div");
      head.innerHTML = "";
      head.appendChild(document.createTextNode(p.t.toFixed(2) + " s · " + p.faces + " face" + (p.faces === 1 ? "" : "s")));
      head.className = "tl-time";
      text.appendChild(head);
      var table = document.createElement("table");
      rows.forEach(function (r) { table.appendChild(r); });
      text.appendChild(table);
      if (framesUrl && img) {
        clearTimeout(frameTimer);
        frameTimer = setTimeout(function () {
          img.hidden = false;
          img.src = framesUrl + "?t=" + p.t.toFixed(3);
          img.alt = "Frame at " + p.t.toFixed(2) + " s";
        }, 120);
      }
    }
    function fromEvent(ev) {
      var r = svg.getBoundingClientRect();
      var x = (ev.clientX - r.left) * width / r.width;
      var t = (x - left) / plotW * span;
      return nearest(Math.max(0, Math.min(span, t)));
    }
    chart.addEventListener("mousemove", function (ev) { show(fromEvent(ev)); });
    chart.addEventListener("click", function (ev) { show(fromEvent(ev)); });
    chart.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
        ev.preventDefault();
        var i = current < 0 ? 0 : current + (ev.key === "ArrowRight" ? 1 : -1);
        show(Math.max(0, Math.min(points.length - 1, i)));
      } else if (ev.key === "Home") { ev.preventDefault(); show(0); }
      else if (ev.key === "End") { ev.preventDefault(); show(points.length - 1); }
    });
    chart.addEventListener("focus", function () { if (current < 0) show(0); });
  }

  // ------------------------------------------------------------ face crop / heatmap viewer
  function setupCrops() {
    var dialog = $("#crop-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return;
    var img = $("#crop-img");
    document.querySelectorAll("button.crop").forEach(function (btn) {
      btn.addEventListener("click", function () {
        img.src = btn.getAttribute("data-crop");
        $("#crop-dialog-h").textContent = btn.getAttribute("data-caption") || "Face crop";
        img.alt = btn.getAttribute("data-caption") || "Enlarged face crop";
        dialog.showModal();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupAnalyze();
    setupProgress();
    setupTimeline();
    setupCrops();
  });
})();
