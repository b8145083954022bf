"""Export, graph surgery and fusion (the ``kaocap[export]`` extra: ``pip install 'kaocap[export]'``).

* :mod:`kaocap.export.fuse`: pure ``onnx.ModelProto -> ModelProto`` passes, one per file.
* :mod:`kaocap.export.parity`: the one check every pass or export goes through before it is
  written (``parity.check(reference, candidate, inputs, tolerance)``).
* :mod:`kaocap.export.crop_graph` / :mod:`kaocap.export.capture`: the fused capture step,
  uint8 frames + ROI transforms -> crop -> normalisation -> network, in one ONNX graph.
* :mod:`kaocap.export.stats`: op histogram, Transpose count, parameters, file size.
* :mod:`kaocap.export.convert`: a kaocap ONNX learner to TFLite fp32/fp16/int8
  (:mod:`~kaocap.export.tflite`, onnx2tf) and OpenVINO IR (:mod:`~kaocap.export.openvino_ir`),
  each file checked on every runtime against the ONNX file on real face crops
  (:mod:`~kaocap.export.calibration`); :mod:`~kaocap.export.file_stats` reads any of them.

>>> from kaocap.export.stats import graph_stats                  # doctest: +SKIP
>>> print(graph_stats("model.onnx").format())
"""
