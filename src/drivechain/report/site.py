"""Writing the static site: copied images, data files the page loads lazily, or one single HTML file.

Folder mode: ``data/NAME.js`` files call ``DC.put("NAME", {...})``; the page adds them as script
tags when needed (Chromium blocks fetch() of JSON from file://, script tags from the page's own
folder pass a ``script-src 'self'`` policy). Single-file mode: images become data URLs and each
data blob an inert ``<script type="application/json">`` block; the app script is inline and
allowed by its sha256 in the policy. Data is JSON with ``<``, ``>`` and ``&`` escaped, so no model
text can close a tag; the page inserts it with textContent only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

CSP_FOLDER = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "base-uri 'none'; form-action 'none'; object-src 'none'")


def safe_json(data: Any) -> str:
    """JSON that is also safe inside an HTML script element and as a JavaScript expression."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def static_text(name: str) -> str:
    """A vendored asset of the package (report.js, report.css)."""
    return resources.files("drivechain.report").joinpath("static", name).read_text(encoding="utf-8")


class Site:
    """The output folder (or single file) being written."""

    def __init__(self, out: Path, single_file: bool = False) -> None:
        self.out = out
        self.single = single_file
        self.blobs: dict[str, str] = {}
        self._images: dict[str, str | None] = {}

    def image(self, path: Path) -> str | None:
        """The page's reference to an image file (copied once, or a data URL); None if it is missing."""
        key = str(path)
        if key in self._images:
            return self._images[key]
        src = None
        if path.is_file():
            if self.single:
                mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                src = f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"
            else:
                name = hashlib.sha1(key.encode()).hexdigest()[:16] + path.suffix.lower()
                (self.out / "img").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, self.out / "img" / name)
                src = f"img/{name}"
        self._images[key] = src
        return src

    def put(self, name: str, data: Any) -> None:
        """A named data blob the page loads on demand."""
        text = safe_json(data)
        if self.single:
            self.blobs[name] = text
            return
        (self.out / "data").mkdir(parents=True, exist_ok=True)
        (self.out / "data" / f"{name}.js").write_text(f'DC.put("{name}",{text});\n', encoding="utf-8")

    def head(self) -> dict[str, str]:
        """CSP and the tags that bring the app's script and style (files, or inline with a hash)."""
        js, css = static_text("report.js"), static_text("report.css")
        if not self.single:
            assets = self.out / "assets"
            assets.mkdir(parents=True, exist_ok=True)
            (assets / "report.js").write_text(js, encoding="utf-8")
            (assets / "report.css").write_text(css, encoding="utf-8")
            return {"csp": CSP_FOLDER, "js": "", "css": "", "single": ""}
        digest = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
        style = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'sha256-{style}'; img-src data:; "
               "base-uri 'none'; form-action 'none'; object-src 'none'")
        return {"csp": csp, "js": js, "css": css, "single": "1"}


def write_atomic(path: Path, text: str) -> None:
    """Write text to path through a temporary file (a reader never sees half a page)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
