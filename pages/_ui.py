"""Moved to `app.ui`. Kept only until pages/train.py imports from there; then delete this file."""

from app.ui import MODEL_LABELS, owner, owner_only, paths, plural  # noqa: F401
