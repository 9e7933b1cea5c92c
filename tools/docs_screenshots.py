"""Screenshot pages of the built documentation in headless Chromium.

    python tools/docs_screenshots.py                 # build, then shoot the default pages
    python tools/docs_screenshots.py --site DIR      # shoot an existing build
    python tools/docs_screenshots.py --page guide/install.html --out /tmp/shots

By default the site is built into ``docs/_build/html-screenshots`` with
MathJax loaded from a local copy (Debian's ``libjs-mathjax``, or
``--mathjax``), so that the formulas render on a machine without network
access; the normal build loads MathJax from its CDN.  Needs ``chromium``
(Debian: ``apt-get install chromium libjs-mathjax``).  The PNGs show what a
reader sees: look at them (formulas typeset, tables readable, nothing cut).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["api/generated/fastloss.cross_entropy.html", "guide/benchmarks.html"]
LOCAL_MATHJAX = [
    # MathJax 2 as Debian packages it; the query selects its TeX + MathML setup
    Path("/usr/share/javascript/mathjax/MathJax.js"),
]


def find_browser():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no Chromium found: apt-get install chromium")


def build(out, mathjax):
    env = dict(os.environ)
    if mathjax is not None:
        # a file: URL works for pages opened from file: URLs
        env["FASTLOSS_DOCS_MATHJAX"] = mathjax.as_uri() + "?config=TeX-AMS-MML_HTMLorMML"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           str(ROOT / "docs"), str(out)]
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)


def shoot(browser, page, png, width, height):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--window-size={width},{height}", "--virtual-time-budget=15000",
           f"--screenshot={png}", page.as_uri()]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120)
    if not png.is_file() or png.stat().st_size == 0:
        raise SystemExit(f"no screenshot written for {page}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, help="an existing build (default: build one)")
    ap.add_argument("--mathjax", type=Path, help="local MathJax.js for the build")
    ap.add_argument("--page", action="append", help="page relative to the site root "
                    "(repeatable; default: the cross_entropy API page and the benchmarks)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "_build" / "screenshots")
    ap.add_argument("--size", default="1400x2200", help="window WIDTHxHEIGHT in pixels")
    args = ap.parse_args(argv)

    site = args.site
    if site is None:
        mathjax = args.mathjax or next((p for p in LOCAL_MATHJAX if p.is_file()), None)
        if mathjax is None:
            print("no local MathJax found: formulas load from the CDN (need network)")
        site = ROOT / "docs" / "_build" / "html-screenshots"
        build(site, mathjax)
    browser = find_browser()
    width, height = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    for rel in args.page or PAGES:
        page = (site / rel).resolve()
        if not page.is_file():
            raise SystemExit(f"{page} does not exist")
        png = args.out / (rel.replace("/", "_").removesuffix(".html") + ".png")
        shoot(browser, page, png, width, height)
        print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
