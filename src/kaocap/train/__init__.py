"""Training of kaocap's own blendshape + head-pose learners (extra ``kaocap[train]``: PyTorch).

Modules that need torch (nets, cnn, losses, batches, loop, export, timing) import it at the top;
``samples``, ``registry`` and ``cli`` do not, so ``kaocap eval`` and inference run without torch.

Learners (``kaocap.train.registry``; params / fp16 size of the exported graph):

=========================  ==========  =======  =============================================
model id                   params      MB fp16  what
=========================  ==========  =======  =============================================
blendshapes_feat_mlp          123 709    0.25   MLP on 164 geometric features (SuperCV (a))
blendshapes_mesh_mlp          881 725    1.76   MLP on the normalised 478-point mesh ((b))
blendshapes_hybrid_mlp        502 717    1.01   features + mesh branches ((c))
blendshapes_cnn_s           1 090 397    2.18   MobileNetV3-small-class CNN, 128 px crops ((d))
blendshapes_cnn_s_lmk       1 458 935    2.92   same + 478-landmark head (exported: the pipeline tracks with it)
blendshapes_cnn_s_gd        1 469 303    2.94   same + global depthwise pooling, standardised loss (shipped, the default)
blendshapes_cnn_s_gdf       1 469 303    2.94   same, trained on mirrored faces half the time (worse: not shipped)
blendshapes_cnn_xs            678 901    1.36   0.75-width CNN
blendshapes_rules                   0    0      rule-based geometric solver ((e), numpy)
=========================  ==========  =======  =============================================

A full run (each learner on its own fits 2 hours on the 2-core machine; the card records the
wall time, the step time and the command)::

    D=~/.cache/kaocap/datasets
    kaocap train --model blendshapes_cnn_s_gd --data $D/real --data $D/render \\
        --mix real:0.6,render:0.4 --seed 0 --threads 2 --epochs 18 --max-steps 13000 --out runs/cnn_s_gd
    kaocap train --model blendshapes_feat_mlp --data $D/real --data $D/render \\
        --mix real:0.6,render:0.4 --seed 0 --threads 1 --time-budget-min 10 --out runs/feat_mlp
    kaocap train --model blendshapes_rules --data $D/real --data $D/render --out runs/rules
    kaocap eval --models runs/cnn_s_gd --models runs/feat_mlp --models runs/rules \\
        --data $D/real --data $D/render --out runs/eval

The shipped face model (kaocap.models.KAOCAP_FACE_MODEL) is ``blendshapes_cnn_s_gd``'s ONNX:
13,000 steps, 80 min on both cores of the 2-core machine (2.6-3 steps/s with two threads on an
otherwise idle machine; the first CNN's 6,457 steps took 74 min on one). It is the pipeline's
default face model (kaocap.config.PipelineConfig.model).
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
