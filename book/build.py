"""Build the series as a web book: ``python book/build.py [--student] [--out build/site]``.

The committed lessons are rendered as they are, with the outputs of their recorded run: nothing is
executed, and no page asks anything of the network (MathJax is bundled). The sources are staged in a
folder of their own first (``build/site-src`` beside the output):

    index.md              the lesson table, then the lessons' and the project's pages
    notebooks/NN_*.ipynb  the lessons (the student edition leaves out the cells tagged ``solution``)
    README.md, CONTRIBUTING.md, CHANGELOG.md, LICENSE, CITATION.cff
    conf.py, _book.json   book/conf.py, and what it reads: version, repository URL, edition

Launch links (Binder, Colab) appear when pyproject.toml's ``[project.urls]`` names the ``Repository``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"README.md": "Install and run (README)", "CONTRIBUTING.md": "Contributing", "CHANGELOG.md": "Changes"}
FILES = ("LICENSE", "CITATION.cff")  # linked from the README: the book offers them as downloads
BRANCH = "main"  # the branch launch links open


def book_settings(pyproject: Path, student: bool, repository_url: str | None = None) -> dict:
    """What ``conf.py`` reads: the version, the repository URL (``repository_url``, else the one in
    ``pyproject``, else None) and the edition."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    url = repository_url or project.get("urls", {}).get("Repository") or None
    return {"version": project["version"], "repository_url": url, "branch": BRANCH, "student": student}


def lessons(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def lesson_title(notebook: nbformat.NotebookNode) -> str:
    """The lesson's own title: its first heading, without the "Lesson NN ·" in front."""
    for cell in notebook.cells:
        heading = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE) if cell.cell_type == "markdown" else None
        if heading:
            return re.sub(r"^Lesson\s+\d+\s*·\s*", "", heading.group(1)).strip()
    raise ValueError("the lesson has no heading to take its title from")


def readme_descriptions(readme: str) -> dict[str, str]:
    """The README's series table, as {notebook file name: what the lesson builds}."""
    rows = re.findall(r"^\|\s*\[?`?(?:notebooks/)?(\d\d_\w+\.ipynb)`?\]?(?:\([^)]*\))?\s*\|\s*(.+?)\s*\|\s*$",
                      readme, re.MULTILINE)
    return dict(rows)


def index_page(titles: dict[str, str], readme: str) -> str:
    """index.md: the README's opening paragraph, the lesson table and the table of contents."""
    intro = readme.split("\n\n")[1].strip()  # the paragraph under the README's title
    described = readme_descriptions(readme)
    rows = "\n".join(f"| {name[:2]} | [{title}](notebooks/{name}) | {described.get(name, '')} |"
                     for name, title in titles.items())
    lessons_toc = "\n".join(f"notebooks/{Path(name).stem}" for name in titles)
    pages_toc = "\n".join(f"{title} <{Path(page).stem}>" for page, title in PAGES.items())
    return (f"# SE-ResNet-50 from scratch in PyTorch\n\n{intro}\n\n"
            f"| | Lesson | What you build |\n|---|---|---|\n{rows}\n\n"
            "Each page is a lesson notebook as committed, with the outputs of a real run; "
            "the button at the top of the page downloads it. To run the lessons yourself, install the "
            "library and keep them together in one folder, as in the repository's `notebooks/`: lessons "
            "06 and 07 read lesson 05 and the committed results in `notebooks/results/`. "
            "[The README](README.md) says how, here or in Colab and Binder.\n\n"
            f"```{{toctree}}\n:caption: Lessons\n:maxdepth: 1\n:hidden:\n\n{lessons_toc}\n```\n\n"
            f"```{{toctree}}\n:caption: The project\n:maxdepth: 1\n:hidden:\n\n{pages_toc}\n```\n")


def stage(source: Path, student: bool, root: Path = ROOT, repository_url: str | None = None) -> Path:
    """Write the book's sources into ``source`` (emptied first); returns ``source``."""
    if source.exists():
        shutil.rmtree(source)
    (source / "notebooks").mkdir(parents=True)
    titles = {}
    for path in lessons(root):
        notebook = nbformat.read(path, as_version=4)
        if student:
            notebook.cells = [cell for cell in notebook.cells if "solution" not in cell.metadata.get("tags", [])]
        titles[path.name] = lesson_title(notebook)
        nbformat.write(notebook, source / "notebooks" / path.name)
    for name in (*PAGES, *FILES):
        shutil.copy2(root / name, source / name)
    readme = (root / "README.md").read_text(encoding="utf-8")
    (source / "index.md").write_text(index_page(titles, readme), encoding="utf-8")
    shutil.copy2(Path(__file__).with_name("conf.py"), source / "conf.py")
    shutil.copytree(Path(__file__).with_name("_static"), source / "_static")
    settings = book_settings(root / "pyproject.toml", student, repository_url)
    (source / "_book.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
    return source


def build(out: Path, student: bool = False, root: Path = ROOT, repository_url: str | None = None) -> Path:
    """Stage the sources beside ``out`` and build the HTML book into ``out`` with warnings as errors."""
    out = Path(out).absolute()
    source = stage(out.with_name(out.name + "-src"), student, root, repository_url)
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
               "-d", str(source / "_build" / "doctrees"), str(source), str(out)]
    subprocess.run(command, check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="where the HTML goes")
    parser.add_argument("--student", action="store_true", help="leave out the worked solutions")
    args = parser.parse_args(argv)
    try:
        out = build(args.out, args.student)
    except subprocess.CalledProcessError as error:
        print(f"sphinx-build failed (exit status {error.returncode}); its messages are above", file=sys.stderr)
        return 1
    print(f"the book is in {out}: open {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
