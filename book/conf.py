"""Sphinx configuration of the web book: the committed lessons, rendered as they are (never executed).

``book/build.py`` copies this file into the folder it stages the sources in, beside ``_book.json``
(the version, the repository URL and branch, and whether this is the student edition). A self-check's
output shows as its text through the library's myst-nb renderer (``seresnet_lib.classroom.book``).
"""

import json
from pathlib import Path

BOOK = json.loads((Path(__file__).parent / "_book.json").read_text(encoding="utf-8"))

project = "SE-ResNet-50 from scratch"
author = "The SE-ResNet-50 notebook series authors"
copyright = f"2026, {author}"
release = version = BOOK["version"]

extensions = ["myst_nb", "sphinx-mathjax-offline"]  # MathJax 3 bundled into _static/: no CDN
exclude_patterns = ["_build"]
root_doc = "index"

# The notebooks are committed with the outputs of a real run: show those, never re-execute.
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no widget outputs; and nothing is to be fetched from a CDN
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # a lesson's later headings start at ## under its # title

html_theme = "sphinx_book_theme"
html_title = "SE-ResNet-50 from scratch"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_show_sourcelink = False
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,  # the page's .ipynb, as committed
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
    "announcement": "Student edition: the worked solutions are left out." if BOOK["student"] else "",
}
# Launch links (Binder, Colab) only when pyproject.toml names the repository, and not in the student
# edition: they open the repository's lessons, solutions included.
if BOOK["repository_url"] and not BOOK["student"]:
    html_theme_options |= {
        "repository_url": BOOK["repository_url"],
        "repository_branch": BOOK["branch"],
        "path_to_docs": "",  # the lessons are at notebooks/ here as in the repository
        "use_repository_button": True,
        "launch_buttons": {
            "notebook_interface": "jupyterlab",
            "binderhub_url": "https://mybinder.org",
            "colab_url": "https://colab.research.google.com",
        },
    }
