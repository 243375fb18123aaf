"""Sweeps under hostile input: every grid file, grid and seed list that could take minutes,
gigabytes or a traceback is refused by ``seresnet sweep`` in a blink, with one short line
naming the file, and before any run starts.

Each test does the attack for real: it writes the file and runs the command. The stand-in
notebook's parameters cell is the only thing a sweep reads of it; nothing is executed.
"""

import re
import time
import tracemalloc

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import seresnet_lib.lab.cli  # noqa: F401 (imported here, so that a command's time is its own)
from seresnet_lib.cli import main
from seresnet_lib.lab import grid
from seresnet_lib.parameters import parse_value


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    parameters = new_code_cell("width = 8\nlabel = 'a'\nseed = 0\nout_dir = 'runs/stand-in'")
    parameters.metadata["tags"] = ["parameters"]
    path = tmp_path_factory.mktemp("notebook") / "stand_in.ipynb"
    nbformat.write(new_notebook(cells=[parameters, new_code_cell("raise RuntimeError('never run here')")],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}}), path)
    return path


def refused(capsys, tmp_path, *arguments, traced=True) -> str:
    """``seresnet sweep ARGUMENTS``'s one line on stderr, once it is known to have exited with 2 within a
    second and 20 MB of memory (if ``traced``: tracing slows it), without a traceback, before making the
    sweep's folder."""
    out_dir = tmp_path / "sweep"
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        code = main(["sweep", *map(str, arguments), "--out-dir", str(out_dir)])
    finally:
        seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("error: ") and error.count("\n") == 1, error[:1000]
    assert seconds < 1 and peak < 20 * 2**20, (seconds, peak / 2**20)
    assert len(error) < 300 and not out_dir.exists(), error[:1000]
    return error


def laughs(levels: int = 9) -> str:
    """A YAML list of 9 ** ``levels`` items in a few hundred bytes: each level is 9 of the one before it."""
    text = "&a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"
    for before, name in zip("abcdefghijk", "bcdefghijkl"[:levels - 1]):
        text = f"&{name} [{text}," + ",".join([f"*{before}"] * 8) + "]"
    return text


@pytest.mark.parametrize("where, line", [("grid: {label: [BOMB]}", 1), ("grid: {width: [8]}\nseeds: BOMB", 2),
                                         ("grid: {width: [8]}\nnotebook: BOMB", 2),
                                         ("grid: {width: [8]}\npreset: bomb.yaml", 1)],
                         ids=["grid", "seeds", "notebook", "preset"])
def test_a_billion_laughs_is_refused_at_its_first_anchor(capsys, tmp_path, notebook, where, line):
    """Before: 45-60 s and 4.7-6.7 GB, then a 2 GB message, or a MemoryError's traceback."""
    (tmp_path / "bomb.yaml").write_text(f"epochs: {laughs()}\n")  # a preset file
    path = tmp_path / "grid.yaml"
    path.write_text(f"{where.replace('BOMB', laughs())}\n" + ("" if "notebook" in where else f"notebook: {notebook}\n"))
    assert len(path.read_bytes()) < 400
    error = refused(capsys, tmp_path, path)
    named = tmp_path / "bomb.yaml" if "preset" in where else path
    assert f"error: {named}, line {line}, column " in error and "anchors and aliases (&name, *name) are not" in error


def test_200000_seeds_are_refused_at_once_in_a_grid_file_or_on_the_command_line(capsys, tmp_path, notebook):
    """Before: checked for more than 2 minutes, then run."""
    path = tmp_path / "grid.yaml"
    path.write_text(f"notebook: {notebook}\ngrid: {{width: [8]}}\nseeds: [{', '.join(map(str, range(200_000)))}]\n")
    assert f"the grid file {path} is over 64 KiB" in refused(capsys, tmp_path, path)
    path.write_text(f"notebook: {notebook}\ngrid: {{width: [8]}}\nseeds: [{', '.join(map(str, range(1_001)))}]\n")
    assert "error: 1,001 seeds; a sweep takes at most 1,000\n" == refused(capsys, tmp_path, path)
    seeds = list(map(str, range(200_000)))
    assert "error: 200,000 seeds; a sweep takes" in refused(capsys, tmp_path, path, "--seeds", *seeds, traced=False)


@pytest.mark.parametrize("values, message", [
    ({"width": list(range(1_001))}, "grid: width has 1,001 values; a parameter takes at most 1,000"),
    ({"width": list(range(101)), "label": list("abcdefghij")}, "the grid asks for 10,100 runs (1,010 settings x 10 "
                                                                "seeds); a sweep runs at most 10,000"),
], ids=["values", "runs"])
def test_grids_too_large_to_run_are_refused_before_being_written_out(notebook, values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        grid.check_grid(values, {}, list(range(10)), notebook)


def test_a_value_too_long_for_a_folder_name_is_refused_naming_the_parameter_and_the_limit(capsys, tmp_path, notebook):
    """Before: the grid was checked, then OSError: [Errno 36] File name too long, in a traceback."""
    path = tmp_path / "grid.yaml"
    path.write_text(f"notebook: {notebook}\ngrid: {{width: [8], label: [{'x' * 300}]}}\n")
    error = refused(capsys, tmp_path, path)
    assert error.startswith("error: grid: the run width=8-label=xxxxxxxxx")
    assert "… needs a folder name of 321 characters, over the file system's limit of 255: shorten the values of " \
           "label" in error
    path.write_text(f"notebook: {notebook}\ngrid: {{width: [8], label: [{'x' * 200}]}}\n")
    assert len(grid.check_grid(grid.load_grid_file(path)["grid"], {}, [0], notebook)[0].name) == 221  # fits


BAD_GRID_FILES = {  # what the file holds (None: there is none; "folder": it is one; a path: a link to it), and
    # what the message says
    "binary": (bytes(range(256)), "is not text (UTF-8): byte 0x80 at position 128"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01", "is not text (UTF-8): byte 0x89 at position 0"),
    "plain text": (b"a list of my favourite widths\n", "must hold a mapping of name: value, got str"),
    "a list": (b"- grid\n- seeds\n", "must hold a mapping of name: value, got list"),
    "tabs": (b"grid:\n\twidth: [8]\n", ", line 2, column 1: not valid YAML: found character '\\t' that cannot"),
    "empty": (b"", "is empty: it must hold a mapping of name: value"),
    "a control character": (b"grid: {label: [a\x07]}\n", ", line 1: not valid YAML: character #x0007 is not"),
    "nested 600 deep": (b"grid: {label: " + b"[" * 600 + b"]" * 600 + b"}\n", "nest more than 32 deep"),
    "a date that is none": (b"grid: {label: [2024-13-01]}\n", "is not valid YAML: month must be in 1..12"),
    "over 64 KiB": (b"# " + b"x" * 70_000 + b"\ngrid: {width: [8]}\n", "is over 64 KiB"),
    "a folder": ("folder", "is a folder, not a YAML file"),
    "endless": ("/dev/zero", "is not a regular file, not a YAML file"),
    "missing": (None, "no grid file"),
}


@pytest.mark.parametrize("kind", list(BAD_GRID_FILES))
def test_a_grid_file_that_is_not_one_is_refused_naming_it(capsys, tmp_path, kind):
    """Before: nested 600 deep, a RecursionError's traceback; /dev/zero, a MemoryError's once it had filled the
    memory; a control character, a position in "<unicode string>"."""
    content, message = BAD_GRID_FILES[kind]
    path = tmp_path / "grid.yaml"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, str):
        path.symlink_to(content)
    elif content is not None:
        path.write_bytes(content)
    error = refused(capsys, tmp_path, path)
    assert str(path) in error and message in error


@pytest.mark.parametrize("text, message", [
    ("notebook: [a, b]", "notebook must be the notebook's file name, got ['a', 'b']"),
    (f"notebook: {'n' * 300}.ipynb", "named in GRID not found"),  # before: OSError, File name too long
    ("out_dir: [a]", "out_dir must be a folder, got ['a']"),
    ("base: [width]", "base must be a mapping of parameter: value, got ['width']"),  # before: TypeError
    ("1: 2", "unknown key(s) 1; allowed: notebook, grid"),  # before: TypeError
    ("preset: [a.yaml]", "preset must name one preset file"),
])
def test_a_grid_files_keys_of_the_wrong_kind_are_refused_naming_the_file(capsys, tmp_path, text, message):
    path = tmp_path / "grid.yaml"
    path.write_text(f"grid: {{width: [8]}}\n{text}\n")
    error = refused(capsys, tmp_path, path)
    assert str(path) in error and message.replace("GRID", str(path)) in error


def test_values_given_on_the_command_line_or_in_python_are_measured_without_being_written_out(capsys, tmp_path,
                                                                                                notebook):
    """-p reads YAML too, but not its aliases: a laugh there stays text; a long text where a number goes;
    a list that holds itself."""
    path = tmp_path / "grid.yaml"
    path.write_text(f"notebook: {notebook}\ngrid: {{width: [8]}}\n")
    assert parse_value(f"[{laughs()}]") == f"[{laughs()}]"
    error = refused(capsys, tmp_path, path, "-p", "width", "w" * 5_000)
    assert f"error: base parameter: width='{'w' * 37}...{'w' * 38}' is a str, but width takes a int" in error
    itself = [1]
    itself.append(itself)
    with pytest.raises(ValueError, match=re.escape("label=[1, [1, [1, [1, [1, [1, [...]]]]]]] is over 10,000")):
        grid.check_grid({"width": [8]}, {"label": itself}, [0], notebook)


@pytest.mark.parametrize("text", ["[" * 1000 + "]" * 1000, "[&a [x, x], *a]", "{a: &b 1, c: *b}"],
                         ids=["nested-1000-deep", "alias-in-a-list", "alias-in-a-mapping"])
def test_a_parameter_given_as_text_is_read_without_aliases_or_deep_nesting(text):
    """``-p NAME VALUE`` on every command line: YAML that a file may not hold stays text, and nothing recurses."""
    assert parse_value(text) == text
    assert parse_value("[4, {a: 1}]") == [4, {"a": 1}]
