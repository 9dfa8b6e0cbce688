"""Read a built book in headless Chromium (Debian's, through playwright), as tests/test_book.py does.

    python tests/browser_check.py results/smoke/book [shots_dir]     # prints what it found

Serves the book from 127.0.0.1 only, visits every page reachable from index.html, and records
console errors, uncaught page errors, failed or off-machine requests, images with no pixels,
images without alt text, pages wider than the window, internal links (and #anchors) that lead nowhere; screenshots the
landing page and notebook 03's page.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag

CHROMIUM = os.environ.get("RECINTERP_CHROMIUM", "/usr/bin/chromium")
# Flags that work in a container as root, with no network and no GPU; the profile is fresh per run.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = {"index.html": "landing.png", "03_sequence_recovery.html": "03_sequence_recovery.png"}

_IMAGES_JS = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return imgs.map(i => ({src: i.currentSrc || i.src, width: i.naturalWidth, alt: i.getAttribute('alt')}));
}"""
_LINKS_JS = "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
_IDS_JS = "() => Array.from(document.querySelectorAll('[id], a[name]')).map(e => e.id || e.getAttribute('name'))"
_WIDER_JS = "() => document.documentElement.scrollWidth > document.documentElement.clientWidth + 1"
_RUN_CARD_JS = "() => document.body.innerText.includes('Produced by preset')"
_TABLE_JS = """() => Array.from(document.querySelectorAll('table')).map(t => t.innerText)
                  .filter(t => t.includes('model [95% CI]'))"""


def chromium_missing() -> str | None:
    """Why no browser check can run here, or None when one can."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does; or set RECINTERP_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a page the browser left mid-transfer: not our error
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    """A static server on 127.0.0.1 (a free port) for ``folder``; returns it and its base URL."""
    server = _Server(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def check_book(book: Path, shots: Path) -> dict:
    """Visit every page of ``book``; returns what was found (lists of problems are empty when all is well)."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    server, base = serve(book)
    profile = Path(tempfile.mkdtemp(prefix="recinterp-chromium-"))
    found = {"pages": [], "console_errors": [], "page_errors": [], "failed_requests": [], "offsite_requests": [],
             "bad_status": [], "empty_images": [], "images_without_alt": [], "images": 0, "broken_links": [],
             "headline_tables": [], "screenshots": [], "alts": [], "pages_without_run_card": [],
             "pages_wider_than_window": []}
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                        args=FLAGS, viewport={"width": 1400, "height": 1000})

            def route(r):
                if r.request.url.startswith(base) or r.request.url.startswith("data:"):
                    r.continue_()
                else:  # the book must not need the network
                    found["offsite_requests"].append(r.request.url)
                    r.abort()

            ctx.route("**/*", route)
            page = ctx.new_page()
            here = {"url": ""}
            page.on("console", lambda m: m.type == "error" and found["console_errors"].append(f"{here['url']}: {m.text}"))
            page.on("pageerror", lambda e: found["page_errors"].append(f"{here['url']}: {e}"))
            page.on("requestfailed", lambda r: r.url.startswith(base)
                    and found["failed_requests"].append(f"{here['url']}: {r.url} ({r.failure})"))
            page.on("response", lambda r: r.status >= 400 and found["bad_status"].append(f"{here['url']}: {r.url} {r.status}"))

            queue, seen, ids, links = [base + "index.html"], set(), {}, []
            while queue:
                url = queue.pop(0)
                if url in seen:
                    continue
                seen.add(url)
                here["url"] = url
                resp = page.goto(url, wait_until="load")
                if resp is None or resp.status != 200:
                    found["broken_links"].append(f"{url}: status {resp.status if resp else 'none'}")
                    continue
                found["pages"].append(url[len(base):])
                for img in page.evaluate(_IMAGES_JS):
                    found["images"] += 1
                    found["alts"].append(img["alt"])
                    if not img["width"]:
                        found["empty_images"].append(f"{url}: {img['src']}")
                    if not (img["alt"] or "").strip() or img["alt"].strip().endswith((".png", ".jpg", ".svg")):
                        found["images_without_alt"].append(f"{url}: {img['src']} alt={img['alt']!r}")
                ids[url] = set(page.evaluate(_IDS_JS))
                for href in page.evaluate(_LINKS_JS):
                    target, frag = urldefrag(href)
                    if not target.startswith(base):
                        continue
                    links.append((url, target, frag))
                    if target.endswith(".html") or target.endswith("/"):
                        queue.append(target)
                name = url[len(base):]
                if page.evaluate(_WIDER_JS):  # a wide table or figure must scroll in its box, not the page
                    found["pages_wider_than_window"].append(name)
                if name[:2].isdigit() and not page.evaluate(_RUN_CARD_JS):  # a notebook page says what produced it
                    found["pages_without_run_card"].append(name)
                if name == "index.html":
                    found["headline_tables"] = page.evaluate(_TABLE_JS)
                if name in SHOTS:
                    page.evaluate("() => document.fonts.ready")
                    page.wait_for_timeout(500)  # the theme scrolls its sidebar to the current page after load
                    page.screenshot(path=str(shots / SHOTS[name]), full_page=True)
                    found["screenshots"].append(str(shots / SHOTS[name]))
            ctx.close()
        for src, target, frag in links:  # every internal link leads to a file, and its #anchor to an element
            page_ids = ids.get(target)
            if page_ids is None:
                try:
                    with urllib.request.urlopen(target, timeout=10) as r:
                        ok = r.status == 200
                except urllib.error.URLError:
                    ok = False
                if not ok:
                    found["broken_links"].append(f"{src} -> {target}")
            elif frag and frag not in page_ids:
                found["broken_links"].append(f"{src} -> {target}#{frag} (no such anchor)")
    finally:
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return found


if __name__ == "__main__":
    book = Path(sys.argv[1])
    why = chromium_missing()
    if why:
        sys.exit(why)
    out = check_book(book, Path(sys.argv[2]) if len(sys.argv) > 2 else book.parent / f"{book.name}_screenshots")
    print(json.dumps({k: v for k, v in out.items() if k != "alts"}, indent=1))
    print("\n".join(sorted(set(a or "" for a in out["alts"]))))
