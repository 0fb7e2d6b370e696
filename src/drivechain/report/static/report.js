/* drivechain report: tabs, sortable tables, reference-model switch, frame browser, replays.
   Vendored, no dependencies. Every piece of data is put into the page with textContent or as an
   attribute value; nothing from data is ever parsed as HTML or run. */
(function () {
  "use strict";
  var DC = (window.DC = { blobs: {}, waiting: {} });
  var STATUS_WORD = { correct: "correct", partial: "partial", wrong: "wrong", unsafe: "unsafe",
    unparsed: "unparsed", failed: "failed", ambiguous: "ambiguous: not scored", language: "text: language metrics" };
  var STAGE_CODE = { r: "right", p: "right (some partial)", w: "wrong", u: "unsafe", "-": "not asked" };

  DC.put = function (name, data) {
    DC.blobs[name] = data;
    var w = DC.waiting[name];
    if (w) { delete DC.waiting[name]; w.forEach(function (f) { f[0](data); }); }
  };
  DC.load = function (name) {
    return new Promise(function (resolve, reject) {
      if (Object.prototype.hasOwnProperty.call(DC.blobs, name)) { resolve(DC.blobs[name]); return; }
      var inline = document.getElementById("dc-" + name);
      if (inline) { DC.blobs[name] = JSON.parse(inline.textContent); resolve(DC.blobs[name]); return; }
      var queue = DC.waiting[name] || (DC.waiting[name] = []);
      queue.push([resolve, reject]);
      if (queue.length > 1) return;
      var s = document.createElement("script");
      s.src = "data/" + name + ".js";
      s.onerror = function () {
        var q = DC.waiting[name] || []; delete DC.waiting[name];
        q.forEach(function (f) { f[1](new Error("cannot load data/" + name + ".js")); });
      };
      document.head.appendChild(s);
    });
  };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function $(id) { return document.getElementById(id); }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function short(text, n) { text = text === null || text === undefined ? "" : String(text); return text.length > n ? text.slice(0, n - 1) + "…" : text; }
  function fmt(v) { return v === null || v === undefined ? "—" : typeof v === "number" ? (Math.round(v * 1000) / 1000).toString() : String(v); }
  function option(sel, value, text) { var o = el("option", null, text); o.value = value; sel.appendChild(o); return o; }

  /* ---------------------------------------------------------------- tabs */
  function showTab() {
    var want = (location.hash || "#leaderboard").slice(1).split("/")[0];
    var sections = document.querySelectorAll("main > section");
    var found = false;
    sections.forEach(function (s) { if (s.id === want) found = true; });
    if (!found) want = "leaderboard";
    sections.forEach(function (s) { s.hidden = s.id !== want; });
    document.querySelectorAll("nav#tabs a").forEach(function (a) {
      a.classList.toggle("active", a.getAttribute("href") === "#" + want);
    });
    if (want === "frames") initBrowser();
    if (want === "frames" && current.frame) drawEdges();
  }

  /* ---------------------------------------------------------------- sortable tables */
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0];
    if (!body) return;
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var num = th.getAttribute("data-type") === "num";
    var dir = th.getAttribute("aria-sort") === "descending" ? "ascending" : "descending";
    if (!th.getAttribute("aria-sort") && !num) dir = "ascending";
    th.parentNode.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var rows = Array.prototype.slice.call(body.rows);
    function key(r) {
      var c = r.cells[idx]; if (!c) return null;
      var v = c.hasAttribute("data-v") ? c.getAttribute("data-v") : c.textContent;
      if (v === "") return null;
      if (num) { var f = parseFloat(v); return isNaN(f) ? null : f; }
      return v.toLowerCase();
    }
    rows.sort(function (a, b) {
      var ga = a.classList.contains("incomplete"), gb = b.classList.contains("incomplete");
      if (ga !== gb) return ga ? 1 : -1; // incomplete runs stay below, unranked
      var x = key(a), y = key(b);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      var c = x < y ? -1 : x > y ? 1 : 0;
      return dir === "ascending" ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  /* ---------------------------------------------------------------- frame browser */
  var index = null, current = { frame: null, data: null, node: null }, filtered = [], page = 0;
  var PAGE = 25, browserStarted = false;

  function initBrowser() {
    if (browserStarted || !$("frame-list")) return;
    browserStarted = true;
    DC.load("index").then(function (idx) {
      index = idx;
      var m = $("f-model"), v = $("f-view"), fam = $("f-family"), sc = $("f-scenario");
      idx.models.forEach(function (name, i) { option(m, i, name); });
      Object.keys(idx.views).forEach(function (k) { option(v, k, idx.views[k]); });
      option(fam, "", "any");
      idx.families.forEach(function (f, i) { option(fam, i, f); });
      option(sc, "", "any");
      idx.scenarios.forEach(function (s) { option(sc, s, s); });
      var stages = $("f-stages");
      idx.stages.forEach(function (s) {
        var lab = el("label", null, s.charAt(0).toUpperCase() + s.slice(1) + " ");
        var sel = el("select"); sel.id = "f-stage-" + s; sel.setAttribute("data-stage", s);
        option(sel, "", "any"); option(sel, "right", "right (no wrong answer)"); option(sel, "mostly", "mostly right (score ≥ 0.75)");
        option(sel, "wrong", "wrong (some answer wrong)"); option(sel, "poor", "mostly wrong (score < 0.5)"); option(sel, "unsafe", "unsafe");
        lab.appendChild(sel); stages.appendChild(lab); stages.appendChild(document.createTextNode(" "));
      });
      var presets = $("presets");
      idx.models.forEach(function (name, i) {
        var b = el("button", null, name + ": wrong at planning, right at perception");
        b.type = "button"; b.setAttribute("data-model", i); b.className = "preset";
        b.addEventListener("click", function () {
          resetFilters(); m.value = String(i);
          $("f-stage-perception").value = "right"; $("f-stage-planning").value = "wrong";
          applyFilters();
        });
        presets.appendChild(b);
      });
      document.querySelectorAll("#filters select, #filters input").forEach(function (x) {
        x.addEventListener(x.tagName === "INPUT" ? "input" : "change", applyFilters);
      });
      $("f-count").insertAdjacentElement("afterend", el("p", "muted", "Squares beside each frame: one group per model (" +
        idx.models.join(", ") + "), one square per stage (" + idx.stages.join(", ") +
        "): green right, yellow partial, red wrong, dark red unsafe, grey not asked. Hover for words."));
      $("f-clear").addEventListener("click", function () { resetFilters(); applyFilters(); });
      $("p-prev").addEventListener("click", function () { if (page > 0) { page--; renderList(); } });
      $("p-next").addEventListener("click", function () { if ((page + 1) * PAGE < filtered.length) { page++; renderList(); } });
      applyFilters();
    }).catch(function (e) { $("f-count").textContent = "The browser's data could not be loaded: " + e.message; });
  }

  function resetFilters() {
    document.querySelectorAll("#filters select").forEach(function (s) {
      if (s.id !== "f-model" && s.id !== "f-view") s.value = "";
    });
    $("f-search").value = "";
  }

  function stageOk(code, pct, want) {
    if (!want) return true;
    if (!code || code === "-" || pct < 0) return false;
    if (want === "right") return code === "r" || code === "p";
    if (want === "wrong") return code === "w" || code === "u";
    if (want === "mostly") return pct >= 75;
    if (want === "poor") return pct < 50;
    return code === "u";
  }

  function applyFilters() {
    var m = parseInt($("f-model").value || "0", 10), view = $("f-view").value;
    var fam = $("f-family").value, famOut = $("f-famout").value, sc = $("f-scenario").value;
    var q = $("f-search").value.trim().toLowerCase();
    var wants = index.stages.map(function (s) { return $("f-stage-" + s).value; });
    filtered = index.frames.filter(function (f) {
      if (sc && f.sc !== sc) return false;
      if (q && f.id.toLowerCase().indexOf(q) < 0) return false;
      var entry = (f.m[m] || {})[view];
      var needAnswers = wants.some(Boolean) || famOut;
      if (needAnswers && !entry) return false;
      for (var i = 0; i < wants.length; i++) if (wants[i] && !stageOk(entry[0].charAt(i), entry[2][i], wants[i])) return false;
      if (fam !== "") {
        var fi = parseInt(fam, 10);
        if (f.fam.indexOf(fi) < 0) return false;
        if (famOut === "w" && entry[1].indexOf(fi) < 0) return false;
        if (famOut === "r" && entry[1].indexOf(fi) >= 0) return false;
      }
      return true;
    });
    page = 0;
    $("f-count").textContent = filtered.length + " of " + index.frames.length + " frames match";
    renderList();
  }

  function renderList() {
    var list = $("frame-list"); clear(list);
    var view = $("f-view").value;
    filtered.slice(page * PAGE, (page + 1) * PAGE).forEach(function (f) {
      var li = el("li"); li.setAttribute("data-frame", f.id);
      if (current.frame === f.id) li.classList.add("sel");
      li.appendChild(el("span", "fid", f.id));
      var chips = el("span", "chips");
      f.m.forEach(function (entry, mi) {
        var codes = (entry[view] || ["----"])[0];
        for (var i = 0; i < codes.length; i++) {
          var c = el("span", "chip st-" + (codes.charAt(i) === "-" ? "" : codes.charAt(i)));
          c.title = index.models[mi] + ", " + index.stages[i] + ": " + STAGE_CODE[codes.charAt(i)];
          chips.appendChild(c);
        }
        if (mi < f.m.length - 1) chips.appendChild(el("span", null, "\u00a0"));
      });
      li.appendChild(chips);
      li.addEventListener("click", function () { openFrame(f.id); });
      list.appendChild(li);
    });
    var pages = Math.max(1, Math.ceil(filtered.length / PAGE));
    $("p-info").textContent = "page " + (page + 1) + " of " + pages;
    $("p-prev").disabled = page === 0;
    $("p-next").disabled = (page + 1) >= pages;
  }

  function chunkOf(id) {
    for (var i = 0; i < index.frames.length; i++) if (index.frames[i].id === id) return index.frames[i].c;
    return null;
  }
  function pad(n) { return ("000" + n).slice(-4); }

  function openFrame(id) {
    var c = chunkOf(id); if (c === null) return;
    current.frame = id;
    document.querySelectorAll("#frame-list li").forEach(function (li) {
      li.classList.toggle("sel", li.getAttribute("data-frame") === id);
    });
    DC.load("frames-" + pad(c)).then(function (chunk) {
      current.data = chunk.frames[id]; current.chunk = c;
      renderFrame();
    });
  }

  function renderFrame() {
    var f = current.data, view = $("f-view").value, box = $("frame-view");
    var mSel = parseInt($("f-model").value || "0", 10);
    clear(box);
    box.appendChild(el("h3", null, f.id));
    box.appendChild(el("p", "muted", "Scenario " + f.scenario + ". Navigation: " + f.command + ". Answers from: " + index.views[view] + "."));
    var imgs = el("div", "images");
    f.images.forEach(function (im) {
      var fig = el("figure"), i = el("img"); i.src = im[1]; i.alt = "camera " + im[0] + " of " + f.id;
      fig.appendChild(i); if (f.images.length > 1) fig.appendChild(el("figcaption", null, im[0]));
      imgs.appendChild(fig);
    });
    box.appendChild(imgs);
    var firsts = f.first_wrong.map(function (fw) { return fw[view] || null; });
    var fw = el("p");
    fw.appendChild(el("strong", null, "First wrong step: "));
    index.models.forEach(function (name, i) {
      var has = f.answers[i] && f.answers[i][view];
      fw.appendChild(document.createTextNode(name + ": " + (has ? (firsts[i] || "none") : "no answers") + (i < index.models.length - 1 ? "; " : ".")));
    });
    box.appendChild(fw);
    var legend = el("p", "legend muted");
    ["correct", "partial", "wrong", "unsafe", "unparsed", "ambiguous"].forEach(function (s) { legend.appendChild(el("span", s, STATUS_WORD[s])); });
    legend.appendChild(document.createTextNode(" Red outline: a model's first wrong step. Click a question to see its parents (green), children (purple), explanation, band and the models' replies."));
    box.appendChild(legend);

    var graph = el("div", "graph"); graph.id = "graph";
    var byQ = {};
    f.nodes.forEach(function (n) { byQ[n.q] = n; });
    index.stages.forEach(function (stage) {
      var col = el("div", "col"); col.setAttribute("data-stage", stage);
      col.appendChild(el("div", "col-head", stage));
      index.models.forEach(function (name, i) {
        if (firsts[i] === stage) col.appendChild(el("div", "col-first", "first wrong step of " + name));
      });
      f.nodes.forEach(function (n) {
        if (n.s !== stage) return;
        var d = el("div", "node"); d.setAttribute("data-q", n.q);
        d.appendChild(el("div", "q", n.q));
        d.appendChild(el("div", n.amb ? "t amb" : "t", "truth: " + short(n.truth, 60) + (n.amb ? " (ambiguous)" : "")));
        index.models.forEach(function (name, i) {
          var a = ((f.answers[i] || {})[view] || {})[n.q];
          if (!a) return;
          var s = el("span", "a " + (a[1] || "none"), short(name, 14) + ": " + short(a[0] === null ? "(no answer)" : a[0], 40));
          s.title = name + ": " + (STATUS_WORD[a[1]] || a[1]);
          d.appendChild(s);
          if (firsts[i] === stage && (a[1] === "wrong" || a[1] === "unsafe" || a[1] === "unparsed" || a[1] === "failed")) {
            d.classList.add("first"); d.title = "first wrong step of " + name;
          }
        });
        d.addEventListener("click", function () { selectNode(n.q); });
        col.appendChild(d);
      });
      graph.appendChild(col);
    });
    box.appendChild(graph);
    var detail = el("div", "detail"); detail.id = "node-detail";
    box.appendChild(detail);
    var req = el("details", "requests"); req.id = "frame-requests";
    req.appendChild(el("summary", null, "Every request of this frame: prompt as sent and raw reply, per model"));
    req.addEventListener("toggle", function () { if (req.open) renderRequests(req, null); });
    box.appendChild(req);
    current.byQ = byQ;
    drawEdges();
    // Start on the selected model's first wrong question (else the first question).
    var start = f.nodes[0] && f.nodes[0].q;
    var mine = (f.answers[mSel] || {})[view] || {};
    if (firsts[mSel]) {
      for (var i = 0; i < f.nodes.length; i++) {
        var a = mine[f.nodes[i].q];
        if (f.nodes[i].s === firsts[mSel] && a && ["wrong", "unsafe", "unparsed", "failed"].indexOf(a[1]) >= 0) { start = f.nodes[i].q; break; }
      }
    }
    if (start) selectNode(start);
  }

  function children(q) { return current.data.nodes.filter(function (n) { return n.parents.indexOf(q) >= 0; }).map(function (n) { return n.q; }); }

  function drawEdges() {
    var graph = $("graph"); if (!graph || !current.data) return;
    var old = graph.querySelector("svg.edges"); if (old) graph.removeChild(old);
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg"); svg.setAttribute("class", "edges");
    var g = graph.getBoundingClientRect();
    svg.setAttribute("width", g.width); svg.setAttribute("height", g.height);
    var cols = Array.prototype.slice.call(graph.querySelectorAll(".col"));
    var colBox = cols.map(function (c) { var r = c.getBoundingClientRect(); return { l: r.left - g.left, r: r.right - g.left }; });
    var stageIdx = {}; index.stages.forEach(function (s, i) { stageIdx[s] = i; });
    var gap = cols.length > 1 ? colBox[1].l - colBox[0].r : 28;
    var top = 5;
    current.data.nodes.forEach(function (n) {
      var cd = graph.querySelector('.node[data-q="' + cssEsc(n.q) + '"]'); if (!cd) return;
      var cr = cd.getBoundingClientRect(), ci = stageIdx[n.s];
      var cy = cr.top - g.top + cr.height / 2, cx = cr.left - g.left;
      n.parents.forEach(function (p, k) {
        var pn = current.byQ[p]; if (!pn) return;
        var pd = graph.querySelector('.node[data-q="' + cssEsc(p) + '"]'); if (!pd) return;
        var pr = pd.getBoundingClientRect(), pi = stageIdx[pn.s];
        var py = pr.top - g.top + pr.height / 2, px = pr.right - g.left;
        var d, off = (k % 5) * 2;
        if (pi === ci) { // same column: around the left side, in the gutter before the column
          var gx = colBox[ci].l - gap / 2 + off - 4;
          d = "M" + (pr.left - g.left) + "," + py + " H" + gx + " V" + cy + " H" + cx;
        } else if (ci === pi + 1) { // next column: down the gutter between the two
          var gx2 = colBox[pi].r + gap / 2 + off - 4;
          d = "M" + px + "," + py + " H" + gx2 + " V" + cy + " H" + cx;
        } else { // across columns: up to the channel above every box, over, and down the child's gutter
          var g1 = colBox[pi].r + gap / 2 + off - 4, g2 = colBox[ci].l - gap / 2 + off - 4;
          d = "M" + px + "," + py + " H" + g1 + " V" + (top + off) + " H" + g2 + " V" + cy + " H" + cx;
        }
        var path = document.createElementNS(NS, "path");
        path.setAttribute("d", d); path.setAttribute("data-from", p); path.setAttribute("data-to", n.q);
        svg.appendChild(path);
      });
    });
    graph.insertBefore(svg, graph.firstChild);
    if (current.node) highlight(current.node);
  }

  function cssEsc(s) { return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, "\\$&"); }

  function highlight(q) {
    var graph = $("graph"); if (!graph) return;
    var kids = children(q), parents = (current.byQ[q] || { parents: [] }).parents;
    graph.querySelectorAll(".node").forEach(function (d) {
      var id = d.getAttribute("data-q");
      d.classList.toggle("sel", id === q);
      d.classList.toggle("parent", parents.indexOf(id) >= 0);
      d.classList.toggle("child", kids.indexOf(id) >= 0);
    });
    graph.querySelectorAll("path").forEach(function (p) {
      var on = p.getAttribute("data-from") === q || p.getAttribute("data-to") === q;
      p.classList.toggle("hl", on);
      if (on) p.parentNode.appendChild(p);
    });
  }

  function selectNode(q) {
    current.node = q;
    highlight(q);
    var n = current.byQ[q], f = current.data, view = $("f-view").value, box = $("node-detail");
    clear(box);
    box.appendChild(el("h3", null, n.q + " (" + n.s + ", " + n.type + ")"));
    var dl = el("dl");
    function row(k, v) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); }
    row("Question", n.question);
    row("Truth", n.truth + (n.amb ? " (ambiguous: not scored)" : ""));
    row("Why (teacher)", n.expl || "—");
    row("Band", n.band || "none: the answer is exact");
    row("Parents", n.parents.join(", ") || "none");
    row("Children", children(q).join(", ") || "none");
    box.appendChild(dl);
    var t = el("table"); var head = el("tr");
    ["Model", "Answer (raw)", "Outcome", "Score (0-1)", "Grader's note", "Request"].forEach(function (h) { head.appendChild(el("th", "l", h)); });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    var tb = el("tbody");
    index.models.forEach(function (name, i) {
      var a = ((f.answers[i] || {})[view] || {})[q];
      var tr = el("tr");
      tr.appendChild(el("td", "l", name));
      if (!a) { tr.appendChild(el("td", "l none", "no answer in this view")); tb.appendChild(tr); return; }
      var ans = el("td", "l " + a[1]); ans.appendChild(el("span", "raw-answer", a[0] === null ? "(none)" : a[0]));
      tr.appendChild(ans);
      tr.appendChild(el("td", "l", (STATUS_WORD[a[1]] || a[1]) + (f.first_wrong[i][view] === n.s && ["wrong", "unsafe", "unparsed", "failed"].indexOf(a[1]) >= 0 ? " — first wrong step" : "")));
      tr.appendChild(el("td", "num", fmt(a[2])));
      tr.appendChild(el("td", "l", a[3]));
      var rq = el("td", "l");
      if (a[4]) {
        var d = el("details", "request"); d.setAttribute("data-model", i);
        d.appendChild(el("summary", null, "prompt and raw reply"));
        d.addEventListener("toggle", function () { if (d.open && !d.getAttribute("data-done")) renderRequests(d, { model: i, key: a[4] }); });
        rq.appendChild(d);
      }
      tr.appendChild(rq);
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    box.appendChild(t);
  }

  function renderMessage(parent, msgs, mid) {
    var m = msgs[mid]; if (!m) return;
    var d = el("details", "message");
    d.appendChild(el("summary", null, m.role + " message"));
    m.parts.forEach(function (p) {
      if (p[0] === "image") {
        if (p[1]) { var im = el("img", "prompt-img"); im.src = p[1]; im.alt = "image sent: " + p[2]; d.appendChild(im); }
        else d.appendChild(el("p", "muted", "image sent: " + p[2] + " (not found)"));
      } else d.appendChild(el("pre", "prompt", p[1]));
    });
    if (m.role !== "system") d.open = true;
    parent.appendChild(d);
  }

  function renderRequest(parent, msgs, r) {
    var box = el("div", "request-body");
    box.appendChild(el("p", "muted", r.label + (r.ok ? "" : " (failed: " + r.error + ")") + "; tokens prompt " + r.tokens[0] + ", completion " + r.tokens[1] + ", reasoning " + r.tokens[2] + "; latency " + fmt(r.latency_s) + " s"));
    var pd = el("details", "prompt"); pd.appendChild(el("summary", null, "Prompt as sent (" + r.prompt.length + " messages)"));
    r.prompt.forEach(function (mid) { renderMessage(pd, msgs, mid); });
    box.appendChild(pd);
    box.appendChild(el("div", null, "Raw reply:"));
    box.appendChild(el("pre", "reply", r.ok ? r.reply : "(no reply: " + r.error + ")"));
    parent.appendChild(box);
  }

  function renderRequests(container, only) {
    container.setAttribute("data-done", "1");
    var holder = el("div", null, "loading…"); container.appendChild(holder);
    DC.load("requests-" + pad(current.chunk)).then(function (chunk) {
      clear(holder);
      var per = chunk.frames[current.data.id] || [];
      if (only) {
        var r = (per[only.model] || []).filter(function (x) { return x.key === only.key; })[0];
        if (r) renderRequest(holder, chunk.messages, r); else holder.textContent = "request not stored in this run's results";
        return;
      }
      index.models.forEach(function (name, i) {
        var md = el("details"); md.appendChild(el("summary", null, name + ": " + (per[i] || []).length + " requests"));
        (per[i] || []).forEach(function (r) {
          var rd = el("details"); rd.appendChild(el("summary", null, r.label));
          rd.addEventListener("toggle", function () { if (rd.open && !rd.getAttribute("data-done")) { rd.setAttribute("data-done", "1"); renderRequest(rd, chunk.messages, r); } });
          md.appendChild(rd);
        });
        holder.appendChild(md);
      });
    }).catch(function (e) { holder.textContent = "Could not load the transcripts: " + e.message; });
  }

  /* ---------------------------------------------------------------- replays */
  function openReplay(name) {
    var box = $("replay-view"); clear(box);
    box.appendChild(el("p", "muted", "loading…"));
    DC.load(name).then(function (data) {
      clear(box);
      box.appendChild(el("h3", null, "Replay: " + data.model));
      var img = el("img"); img.alt = "closed-loop step";
      var slider = el("input"); slider.type = "range"; slider.min = 0; slider.max = data.steps.length - 1; slider.value = 0;
      slider.setAttribute("aria-label", "step");
      var cap = el("p", "caption"), reply = el("pre", "reply");
      function show(k) {
        var s = data.steps[k];
        img.src = s.image || "";
        var words = "Step " + s.step + " (t = " + fmt(s.t_s) + " s): the model chose " + (s.model_action || "nothing") +
          (s.fallback ? " (fallback, executed " + s.action + ")" : "") + "; the teacher prefers " + (s.teacher || "—") +
          " (acceptable: " + ((s.acceptable || []).join(", ") || "—") + ")" + (s.agree ? "; agrees" : "; disagrees") +
          (s.unsafe ? "; UNSAFE" : "") + (s.collision ? "; COLLISION " + (typeof s.collision === "object" ? JSON.stringify(s.collision) : s.collision) : "") +
          (s.failure ? "; request failed: " + s.failure : "");
        cap.textContent = words;
        reply.textContent = s.reply || "(no reply stored)";
      }
      slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
      box.appendChild(cap); box.appendChild(slider); box.appendChild(img);
      box.appendChild(el("div", null, "The model's reply at this step:")); box.appendChild(reply);
      show(0);
      box.scrollIntoView();
    }).catch(function (e) { clear(box); box.appendChild(el("p", "warn", e.message)); });
  }

  function start() {
    document.querySelectorAll("table.sortable thead th").forEach(function (th) {
      th.addEventListener("click", function () { sortBy(th); });
    });
    document.querySelectorAll("select.ref-select").forEach(function (sel) {
      sel.addEventListener("change", function () {
        var g = sel.getAttribute("data-group");
        document.querySelectorAll('.ref-tables[data-group="' + g + '"]').forEach(function (d) {
          d.hidden = d.getAttribute("data-ref") !== sel.value;
        });
      });
    });
    document.querySelectorAll("button.replay-open").forEach(function (b) {
      b.addEventListener("click", function () { openReplay(b.getAttribute("data-replay")); });
    });
    var resizeTimer = null;
    window.addEventListener("resize", function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawEdges, 100); });
    window.addEventListener("hashchange", showTab);
    showTab();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
