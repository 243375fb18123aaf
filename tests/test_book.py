"""The web book (``make site``): built from the committed lessons, then read in a real browser.

The book is built once (Sphinx with warnings as errors), served on localhost, and every page is
loaded in Debian's Chromium (headless, driven by Playwright): every image loads, the math is
typeset by the bundled MathJax, no request leaves the site, every sidebar link resolves and lesson
code fits the page at 1280 px. Without Chromium the browser test is skipped, saying so, unless
SERESNET_REQUIRE_BROWSER is set (``.ci/run`` sets it), when it fails. It keeps screenshots of the
index and of lesson 05 in build/site-shots/.
"""

import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "site-shots"
REPOSITORY = "https://github.com/example-org/seresnet50-notebooks"  # launch links need one; none is set yet
_spec = importlib.util.spec_from_file_location("book_build", ROOT / "book" / "build.py")
book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book)


def chromium() -> str | None:
    return os.environ.get("SERESNET_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


# Staging, cheap: no Sphinx

def test_the_index_lists_every_lesson_with_its_title_and_what_it_builds(tmp_path):
    source = book.stage(tmp_path / "src", student=False)
    index = (source / "index.md").read_text()
    for path in book.lessons():
        title = book.lesson_title(nbformat.read(path, as_version=4))
        row = next(line for line in index.splitlines() if f"(notebooks/{path.name})" in line)
        assert f"[{title}]" in row and row.count("|") == 4 and not row.endswith("|  |"), row
        assert f"notebooks/{path.stem}\n" in index  # in the sidebar's table of contents
    assert json.loads((source / "_book.json").read_text())["repository_url"] is None  # none in pyproject.toml


def test_the_student_edition_leaves_out_the_solutions_and_nothing_else(tmp_path):
    student = book.stage(tmp_path / "student", student=True)
    for path in book.lessons():
        full = nbformat.read(path, as_version=4).cells
        kept = nbformat.read(student / "notebooks" / path.name, as_version=4).cells
        solutions = [cell for cell in full if "<details>" in cell.source]
        assert solutions and not any("<details>" in cell.source for cell in kept), path.name
        assert len(kept) == len(full) - len(solutions)
        assert [cell for cell in kept if cell.cell_type == "code"] == [c for c in full if c.cell_type == "code"]
    settings = json.loads((student / "_book.json").read_text())
    assert settings["student"] is True


def conf_options(source: Path, settings: dict) -> dict:
    """The html_theme_options that book/conf.py makes of ``settings`` (its _book.json)."""
    (source / "_book.json").write_text(json.dumps(settings))
    namespace = {"__file__": str(source / "conf.py")}
    exec((ROOT / "book" / "conf.py").read_text(), namespace)
    return namespace["html_theme_options"]


def test_launch_links_come_from_the_repository_url_in_pyproject_and_only_then(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "seresnet-lib"\nversion = "1.2.3"\n')
    unset = book.book_settings(pyproject, student=False)
    assert unset["repository_url"] is None
    assert not {"launch_buttons", "repository_url"} & conf_options(tmp_path, unset).keys()
    pyproject.write_text(pyproject.read_text() + f'urls = {{ Repository = "{REPOSITORY}" }}\n')
    settings = book.book_settings(pyproject, student=False)
    assert settings == {"version": "1.2.3", "repository_url": REPOSITORY, "branch": "main", "student": False}
    options = conf_options(tmp_path, settings)
    assert options["repository_url"] == REPOSITORY and options["launch_buttons"]["colab_url"]
    # the student edition opens no launch link: it would open the lessons with their solutions
    assert "launch_buttons" not in conf_options(tmp_path, {**settings, "student": True})


# The built book, in Chromium

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The book, built with launch links (to a repository URL given here); ``sphinx-build -W`` must pass."""
    return book.build(tmp_path_factory.mktemp("book") / "site", repository_url=REPOSITORY)


@pytest.fixture(scope="module")
def site(built):
    """The built book, served on localhost: (its folder, its URL)."""
    if chromium() is None:
        message = ("the browser test did not run: Chromium is not installed (apt-get install chromium, as "
                   ".ci/run does; or set SERESNET_CHROMIUM to a Chromium binary)")
        if os.environ.get("SERESNET_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    out = built
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=out))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=flags)
        yield launched
        launched.close()


PAGE_FACTS = """() => ({
  images: [...document.images].map(img => ({src: img.currentSrc, loaded: img.complete && img.naturalWidth > 0})),
  typeset: document.querySelectorAll('mjx-container').length,
  mathNodes: document.querySelectorAll('.math').length,
  rawMath: [...document.querySelectorAll('.math')].filter(m => !m.querySelector('mjx-container'))
             .map(m => m.textContent.slice(0, 60)),
  dollars: (() => {
    const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
    const found = [];
    while (walker.nextNode()) {
      const node = walker.currentNode;
      if (node.parentElement.closest('pre, code, script, style, mjx-container, .output')) continue;
      if (node.textContent.includes('$')) found.push(node.textContent.trim().slice(0, 60));
    }
    return found;
  })(),
  sidebar: [...document.querySelectorAll('.bd-sidebar-primary a.reference')].map(a => a.href),
  launch: [...document.querySelectorAll('a[href*="mybinder.org"], a[href*="colab.research.google.com"]')]
            .map(a => a.href),
  download: [...document.querySelectorAll('a[href$=".ipynb"]')].map(a => a.getAttribute('href')),
  wideCode: [...document.querySelectorAll('div.cell_input pre')].filter(pre => pre.scrollWidth > pre.clientWidth + 1)
              .map(pre => pre.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a))),
})"""


def _visit(browser, url: str, origin: str, screenshot: Path | None = None) -> dict:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside = []  # every request the page makes is reported here, the failed ones too
    page.on("request", lambda request: None if request.url.startswith(origin)
            or urlsplit(request.url).scheme in ("data", "blob") else outside.append(request.url))
    response = page.goto(url, wait_until="load")  # every image and script loaded (or failed)
    assert response.ok, f"{url}: HTTP {response.status}"
    page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
    facts = page.evaluate(PAGE_FACTS)
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=False)
    page.close()
    return {**facts, "outside": outside}


def test_every_page_loads_its_images_and_math_from_the_site_alone(site, browser):
    out, origin = site
    pages = sorted(path.relative_to(out).as_posix() for path in out.rglob("*.html") if "_static" not in path.parts)
    lessons = [f"notebooks/{path.stem}.html" for path in book.lessons()]
    assert set(lessons) | {"index.html", "README.html", "CONTRIBUTING.html", "CHANGELOG.html"} <= set(pages)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shots = {"index.html": SHOTS / "index.png", "notebooks/05_train_cifar10.html": SHOTS / "05_train_cifar10.png"}
    sidebar_links, problems, images = set(), [], 0
    for name in pages:
        facts = _visit(browser, origin + name, origin, shots.get(name))
        sidebar_links |= set(facts["sidebar"])
        problems += [f"{name}: request outside the site: {url}" for url in facts["outside"]]
        problems += [f"{name}: image did not load: {img['src']}" for img in facts["images"] if not img["loaded"]]
        problems += [f"{name}: math left raw: {text!r}" for text in facts["rawMath"]]
        problems += [f"{name}: raw $ in the text: {text!r}" for text in facts["dollars"]]
        problems += [f"{name}: code wider than the page: {line!r}" for line in facts["wideCode"]]
        if name in lessons:
            stem = Path(name).stem
            expected_images = sum(len(output.get("data", {}).keys() & {"image/png", "image/svg+xml"})
                                  for cell in nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4).cells
                                  for output in cell.get("outputs", []))
            assert len(facts["images"]) >= expected_images, f"{name}: {len(facts['images'])} images"
            images += expected_images
            assert f"../_sources/notebooks/{stem}.ipynb" in facts["download"], f"{name}: no .ipynb download"
            assert f"https://mybinder.org/v2/gh/example-org/seresnet50-notebooks/main?urlpath=lab/tree/notebooks/" \
                   f"{stem}.ipynb" in facts["launch"], facts["launch"]
            assert (f"https://colab.research.google.com/github/example-org/seresnet50-notebooks/blob/main/notebooks/"
                    f"{stem}.ipynb") in facts["launch"], facts["launch"]
        if name == "notebooks/03_squeeze_excitation.html":  # its formulas: 2C^2/r weights per block, ...
            assert facts["typeset"] >= 5 and facts["mathNodes"] >= 5, facts
    assert not problems, "\n".join(problems)
    assert images > 10  # the lessons' figures were there to load
    targets = {urljoin(link, urlsplit(link).path) for link in sidebar_links}
    assert {origin + name for name in lessons} <= targets
    for link in targets:
        path = out / urlsplit(link).path.lstrip("/")
        assert link.startswith(origin) and (path / "index.html" if path.is_dir() else path).is_file(), link
    assert all(shot.stat().st_size > 10_000 for shot in shots.values())


def test_the_book_offers_each_lesson_as_committed(built):
    out = built
    for path in book.lessons():
        offered = out / "_sources" / "notebooks" / path.name
        assert nbformat.read(offered, as_version=4) == nbformat.read(path, as_version=4), path.name
    assert re.search(r"mathjax/tex-chtml\.js", (out / "notebooks" / "03_squeeze_excitation.html").read_text())
