"""Export, graph surgery and fusion (the ``kaocap[export]`` extra: ``pip install 'kaocap[export]'``).

* :mod:`kaocap.export.fuse`: pure ``onnx.ModelProto -> ModelProto`` passes, one per file.
* :mod:`kaocap.export.parity`: the one check every pass or export goes through before it is
  written (``parity.check(reference, candidate, inputs, tolerance)``).
* :mod:`kaocap.export.crop_graph` / :mod:`kaocap.export.capture`: the fused capture step,
  uint8 frames + ROI transforms -> crop -> normalisation -> network, in one ONNX graph.
* :mod:`kaocap.export.stats`: op histogram, Transpose count, parameters, file size.

>>> from kaocap.export.stats import graph_stats                  # doctest: +SKIP
>>> print(graph_stats("model.onnx").format())
"""
