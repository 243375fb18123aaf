"""How the web book (Sphinx with myst-nb) shows a self-check's output: as its text, like JupyterLab.

A self-check's output carries two copies: ``text/plain`` ("✓ ..." or "✗ ...") and ``CHECK_MIME``,
the same as data for grading. myst-nb renders every copy before it picks one, and warns of a MIME
type it has no renderer for; this renderer (found through the entry point
``myst_nb.mime_renderers`` in pyproject.toml) takes ``CHECK_MIME``, renders nothing for it and
ranks it last, so the page shows the text.
"""

from __future__ import annotations

from .checks import CHECK_MIME


class CheckOutputRenderer:
    """A myst-nb MIME renderer plugin (``myst_nb.core.render.MimeRenderPlugin``) for ``CHECK_MIME``."""

    mime_priority_overrides = [("*", CHECK_MIME, None)]  # never chosen: the text/plain copy is

    @staticmethod
    def handle_mime(renderer, data, inline: bool) -> list | None:
        """No nodes for the data copy; None (not ours) for every other MIME type."""
        return [] if data.mime_type == CHECK_MIME else None
