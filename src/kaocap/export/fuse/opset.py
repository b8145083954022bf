"""Pass: convert a model to another default-domain opset (onnx.version_converter)."""

from __future__ import annotations

from onnx import ModelProto, version_converter

from kaocap.export.fuse._graph import GraphError, copy_model, opset


def change_opset(model: ModelProto, version: int) -> ModelProto:
    """A copy of ``model`` converted to ONNX opset ``version`` (default domain only).

    Returns an unchanged copy when the model already uses ``version``; raises GraphError
    when the converter has no adapter for one of the model's ops.

    >>> change_opset(model, 17).opset_import[0].version              # doctest: +SKIP
    17
    """
    current = opset(model)
    if current == version:
        return copy_model(model)
    try:
        converted = version_converter.convert_version(model, version)
    except Exception as exc:  # the converter raises RuntimeError / ConvertError
        raise GraphError(f"cannot convert opset {current} -> {version}: {str(exc).strip()[:200]}") from exc
    return converted
