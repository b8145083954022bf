"""Training of kaocap's own blendshape + head-pose learners (extra ``kaocap[train]``: PyTorch).

Modules that need torch (nets, cnn, losses, batches, loop, export) import it at the top;
``samples`` and ``registry`` do not, so ``kaocap eval`` runs without torch.
"""

from __future__ import annotations

from kaocap.errors import KaocapError


class MissingExtra(KaocapError):
    """An optional dependency group is not installed."""

    exit_code = 2


def require_torch() -> None:
    """Raise MissingExtra naming the extra when PyTorch is not installed."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise MissingExtra("training needs PyTorch: pip install 'kaocap[train]'")
