"""Input errors raised by the geometry helpers.

Both subclass ValueError so that callers which only know "bad input" can catch them
generically, while the API layer can map each one to its own error code.
"""

from __future__ import annotations


class MeshFormatError(ValueError):
    """The mesh input is unreadable, corrupt, of an unsupported format, or empty."""


class ImageFormatError(ValueError):
    """The image input is unreadable, of an unsupported format, or too large."""
