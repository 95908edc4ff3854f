"""Defaults an operator meets in commands and files, in a module the command line can
import without loading the node."""

from __future__ import annotations

DEFAULT_CHECKPOINT_EVERY = 10
"""A consortium peer signs a checkpoint every this many blocks."""
