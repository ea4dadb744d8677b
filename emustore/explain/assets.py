"""The page's stylesheet and script, inlined into every page (no network, no external file).

The script only adds to a page that is complete without it: it builds the file trees from the
embedded JSON lazily (a directory's children are created when it is first opened, so the DOM
holds only what the reader opened), searches every layer's paths, and follows `#path=/p` and
`#search=text` in the address to reveal a path or run a search.
"""

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#fff}
main{margin:0 24px 40px}
header{padding:16px 24px 8px;border-bottom:1px solid #dde1e7;background:#f8f9fb}
h1{font-size:22px;margin:0 0 4px} h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #e4e7ec;padding-bottom:4px}
h3{font-size:16px;margin:0 0 6px}
nav a{margin-right:14px} #search{font:inherit;padding:3px 8px;width:22em;border:1px solid #b8c0cc;border-radius:5px}
p.lead{color:#4a5263;margin:0 0 8px}
pre,code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
pre{background:#f6f7f9;border:1px solid #dde1e7;border-radius:6px;padding:10px 12px;overflow-x:auto}
pre.wrap{white-space:pre-wrap;word-break:break-all} h4{font-size:14px;margin:12px 0 4px}
table.mount code{word-break:break-all} table.changes th{text-align:left;font-weight:600;color:#4a5263;padding:2px 8px}
svg{border:1px solid #dde1e7;border-radius:8px;background:#fcfcfd;max-width:100%;height:auto}
svg text{font-family:ui-monospace,monospace;font-size:12px;fill:#1d2330}
svg text.kind{font-family:system-ui,sans-serif;font-weight:600;font-size:13px}
svg text.edge{font-family:system-ui,sans-serif;font-size:11px;fill:#4a5263}
svg text.col{font-family:system-ui,sans-serif;font-weight:700;font-size:13px;fill:#4a5263}
svg .box{stroke:#7a8599;stroke-width:1.2} svg .broken{stroke:#c62828;stroke-width:2.5}
svg line{stroke:#56627a;stroke-width:1.4} svg line.lower{stroke:#8e44ad;stroke-dasharray:5 3}
svg a:hover rect{stroke:#1f5fbf;stroke-width:2}
.box{border:1px solid #cfd5de;border-radius:8px;padding:12px 14px;margin:12px 0;background:#fff}
.box:target{outline:3px solid #f0b429;outline-offset:2px}
dl.ids{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0}
dl.ids dt{color:#4a5263} dl.ids dd{margin:0;font-family:ui-monospace,monospace;font-size:13px;word-break:break-all}
.bar{height:8px;background:#e4e7ec;border-radius:4px;margin:4px 0 8px;max-width:420px}
.bar span{display:block;height:8px;background:#3b7dd8;border-radius:4px}
table.changes{border-collapse:collapse;font-size:13px;margin:6px 0}
table.changes td{padding:2px 8px;vertical-align:top;border-top:1px solid #eef0f3}
table.changes td.hides{color:#5b6475}
.st{font-size:11px;font-weight:700;text-transform:uppercase;padding:1px 5px;border-radius:4px;margin-right:4px}
.st-added{background:#dff3e4;color:#17692c} .st-modified{background:#fff1d6;color:#8a5a00}
.st-deleted{background:#fde2e2;color:#a61b1b} .st-opaque{background:#ece3fb;color:#5b2a9e}
.st-unchanged{background:#eef0f3;color:#5b6475}
.tree{font-family:ui-monospace,monospace;font-size:13px;margin:6px 0}
.tree details>div,.tree details>details{margin-left:18px}
.tree summary{cursor:pointer} .row{white-space:pre} .row .mode{color:#5b6475;margin-left:8px}
.row .name{display:inline-block;min-width:28ch;margin-right:8px} .row .name.dir{font-weight:600}
.row .size{display:inline-block;min-width:8ch;text-align:right;color:#5b6475}
.row .hid{color:#a61b1b} .hit{background:#fff3b0}
#search-results{font-size:14px;margin:8px 0;padding:0;list-style:none;max-height:40vh;overflow:auto} #search-results li{margin:2px 0}
.note{color:#5b6475;font-size:13px}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("explain-data").textContent);
  var STATUS = {a: "added", m: "modified", d: "deleted", o: "opaque", u: "unchanged"};
  var TYPES = {0x4000: "d", 0x8000: "-", 0xA000: "l", 0x2000: "c", 0x6000: "b", 0x1000: "p", 0xC000: "s"};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function filemode(m) {
    var s = [TYPES[m & 0xF000] || "?"], bits = "rwxrwxrwx";
    for (var i = 0; i < 9; i++) s.push(m & (256 >> i) ? bits[i] : "-");
    [[0x800, 3, "s"], [0x400, 6, "s"], [0x200, 9, "t"]].forEach(function (x) {
      if (m & x[0]) s[x[1]] = s[x[1]] === "-" ? x[2].toUpperCase() : x[2];
    });
    return s.join("");
  }
  function layerLink(n) {
    var a = el("a", "lay", "layer " + n);
    a.href = "#layer-" + n;
    return a;
  }

  // A list of entries [parent, name, mode, uid, gid, size, status, hidden_by, target, note] in
  // parent-first order; children indexes and paths are computed once, on first use.
  function Listing(entries, layerOf) {
    this.entries = entries;
    this.layerOf = layerOf;  // merged view: index -> layer, else null
    this.kids = null;
    this.paths = null;
  }
  Listing.prototype.children = function (i) {
    if (!this.kids) {
      this.kids = {"-1": []};
      for (var j = 0; j < this.entries.length; j++) {
        var p = this.entries[j][0];
        (this.kids[p] = this.kids[p] || []).push(j);
      }
    }
    return this.kids[i] || [];
  };
  Listing.prototype.path = function (i) {
    if (!this.paths) {
      this.paths = new Array(this.entries.length);
      for (var j = 0; j < this.entries.length; j++) {
        var e = this.entries[j];
        this.paths[j] = (e[0] < 0 ? "" : this.paths[e[0]]) + "/" + e[1];
      }
    }
    return this.paths[i];
  };
  Listing.prototype.row = function (i) {
    var e = this.entries[i], r = el("span", "row"), dir = (e[2] & 0xF000) === 0x4000;
    r.dataset.path = this.path(i);
    r.appendChild(el("span", dir ? "name dir" : "name", e[1] + (dir ? "/" : "") + (e[8] ? " -> " + e[8] : "") + (e[9] ? "  (" + e[9] + ")" : "")));
    r.appendChild(document.createTextNode(" "));
    if (this.layerOf) r.appendChild(layerLink(this.layerOf[i]));
    else r.appendChild(el("span", "st st-" + STATUS[e[6]], STATUS[e[6]]));
    r.appendChild(document.createTextNode(" "));
    r.appendChild(el("span", "mode", filemode(e[2]) + " " + e[3] + ":" + e[4]));
    r.appendChild(document.createTextNode(" "));
    r.appendChild(el("span", "size", String(e[5])));
    if (!this.layerOf && e[7] >= 0) {
      var h = el("span", "hid", " hidden by ");
      h.appendChild(layerLink(e[7]));
      r.appendChild(h);
    }
    return r;
  };
  Listing.prototype.fill = function (box, parent) {
    var self = this;
    this.children(parent).forEach(function (i) {
      var e = self.entries[i];
      if ((e[2] & 0xF000) === 0x4000 && self.children(i).length) {
        var d = el("details"), s = el("summary");
        d.dataset.index = i;
        s.appendChild(self.row(i));
        d.appendChild(s);
        d.addEventListener("toggle", function () {
          if (d.open && !d.dataset.filled) { d.dataset.filled = "1"; self.fill(d, i); }
        });
        box.appendChild(d);
      } else {
        var div = el("div");
        div.appendChild(self.row(i));
        box.appendChild(div);
      }
    });
  };
  // Open the dirs on the way to `path` and return its row, or null.
  Listing.prototype.reveal = function (box, path) {
    var parts = path.split("/").filter(Boolean), parent = -1, node = box, found = null;
    for (var k = 0; k < parts.length; k++) {
      var self = this, want = parts[k], next = -1;
      this.children(parent).forEach(function (i) { if (self.entries[i][1] === want) next = i; });
      if (next < 0) return null;
      var rowBox = null;
      for (var c = 0; c < node.children.length; c++) {
        var child = node.children[c];
        var row = child.querySelector(".row");
        if (child.tagName !== "SUMMARY" && row && row.dataset.path === this.path(next)) rowBox = child;
      }
      if (!rowBox) return null;
      found = rowBox.querySelector(".row");
      if (k < parts.length - 1) {
        if (rowBox.tagName !== "DETAILS") return null;
        if (!rowBox.dataset.filled) { rowBox.dataset.filled = "1"; this.fill(rowBox, next); }
        rowBox.open = true;
        node = rowBox;
      }
      parent = next;
    }
    return found;
  };

  var layers = D.layers.map(function (l) { return new Listing(l, null); });
  var mergedLayer = D.merged.map(function (m) { return m[1]; });
  var mergedEntries = D.merged.map(function (m) {
    var e = D.layers[m[1]][m[2]].slice();
    e[0] = m[0];
    return e;
  });
  var merged = new Listing(mergedEntries, mergedLayer);

  function mount(box, listing) {
    if (box.dataset.filled) return;
    box.dataset.filled = "1";
    box.textContent = "";
    listing.fill(box, -1);
  }
  var mergedBox = document.getElementById("merged-tree");
  mount(mergedBox, merged);
  document.querySelectorAll("details.layer-tree").forEach(function (d) {
    var n = Number(d.dataset.layer), box = d.querySelector(".tree");
    d.addEventListener("toggle", function () { if (d.open) mount(box, layers[n]); });
  });
  document.getElementById("merged-listing").open = false;

  // Search: every path of every layer, with what each layer did to it.
  var index = null;
  function buildIndex() {
    index = new Map();
    layers.forEach(function (l, n) {
      for (var i = 0; i < l.entries.length; i++) {
        var p = l.path(i);
        if (!index.has(p)) index.set(p, []);
        index.get(p).push([n, i]);
      }
    });
  }
  var mergedIndex = null;
  function mergedLayerOf(path) {
    if (!mergedIndex) {
      mergedIndex = new Map();
      for (var i = 0; i < merged.entries.length; i++) mergedIndex.set(merged.path(i), mergedLayer[i]);
    }
    return mergedIndex.has(path) ? mergedIndex.get(path) : -1;
  }
  function sortKey(path) { return path.split("/").join("\u0000"); }
  function describe(li, path, hits) {
    var a = el("a", null, path);
    a.href = "#path=" + encodeURIComponent(path);
    li.appendChild(a);
    var top = mergedLayerOf(path);
    if (top >= 0) { li.appendChild(document.createTextNode(": the container sees it from ")); li.appendChild(layerLink(top)); }
    else li.appendChild(document.createTextNode(": not in the merged view"));
    li.appendChild(document.createTextNode(" — "));
    hits.forEach(function (h, k) {
      var e = layers[h[0]].entries[h[1]];
      if (k) li.appendChild(document.createTextNode(", "));
      li.appendChild(layerLink(h[0]));
      li.appendChild(document.createTextNode(" " + STATUS[e[6]] + (e[9] ? " (" + e[9] + ")" : "")));
    });
  }
  var results = document.getElementById("search-results"), input = document.getElementById("search");
  function search(q) {
    results.textContent = "";
    if (!q) return;
    if (!index) buildIndex();
    var found = [], lower = q.toLowerCase();
    index.forEach(function (hits, path) { if (path.toLowerCase().indexOf(lower) >= 0) found.push(path); });
    found.sort(function (x, y) { var a = sortKey(x), b = sortKey(y); return a === b ? 0 : a < b ? -1 : 1; });
    var head = el("li", "note", found.length + " path" + (found.length === 1 ? "" : "s") + " match" + (found.length > 200 ? " (first 200 shown)" : ""));
    results.appendChild(head);
    found.slice(0, 200).forEach(function (path) {
      var li = el("li");
      li.dataset.path = path;
      describe(li, path, index.get(path));
      results.appendChild(li);
    });
  }
  var timer = null;
  input.disabled = false;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { search(input.value.trim()); }, 120);
  });
  function follow() {
    var h = decodeURIComponent(location.hash.slice(1));
    if (h.indexOf("search=") === 0) { input.value = h.slice(7); search(input.value); }
    else if (h.indexOf("path=") === 0) {
      var row = merged.reveal(mergedBox, h.slice(5));
      document.querySelectorAll(".hit").forEach(function (x) { x.classList.remove("hit"); });
      if (row) { row.classList.add("hit"); row.scrollIntoView({block: "center"}); }
    }
  }
  window.addEventListener("hashchange", follow);
  document.body.classList.add("js");
  follow();
})();
"""
