"""Graph passes: pure ``onnx.ModelProto -> ModelProto`` functions, one per module.

Each returns a new model (its input is never modified) and matches a generic pattern, never
one model. Chain them, then write the result through :func:`kaocap.export.parity.save_checked`.

=====================  ==========================================================
``merge``              two graphs into one: chain tensors into inputs, or share inputs
``prefix_names``       prefix every tensor and node name
``add_outputs``        expose intermediate tensors as outputs
``cut_outputs``        remove outputs and prune what only they needed
``set_batch``          first dimension of inputs/outputs -> a symbol or a fixed size
``change_opset``       convert to another default-domain opset
``fold_constants``     evaluate constant subgraphs into initializers
``select_by_mask``     two branches on shared inputs, per-sample ``Where(mask, a, b)``
``blend_by_weight``    two branches on shared inputs, per-sample ``w * a + (1 - w) * b``
=====================  ==========================================================

>>> from kaocap.export import fuse
>>> model = fuse.fold_constants(fuse.set_batch(model, "N"))     # doctest: +SKIP
"""

from kaocap.export.fuse._graph import GraphError
from kaocap.export.fuse.add_outputs import add_outputs
from kaocap.export.fuse.batch import set_batch
from kaocap.export.fuse.blend_by_weight import blend_by_weight
from kaocap.export.fuse.cut_outputs import cut_outputs
from kaocap.export.fuse.fold_constants import fold_constants
from kaocap.export.fuse.merge import merge
from kaocap.export.fuse.opset import change_opset
from kaocap.export.fuse.prefix import prefix_names
from kaocap.export.fuse.select_by_mask import select_by_mask

__all__ = [
    "GraphError",
    "add_outputs",
    "blend_by_weight",
    "change_opset",
    "cut_outputs",
    "fold_constants",
    "merge",
    "prefix_names",
    "select_by_mask",
    "set_batch",
]
