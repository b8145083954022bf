"""ONNX learner -> OpenVINO IR (``.xml`` graph + ``.bin`` weights), dynamic batch kept.

``openvino.convert_model`` reads the ONNX file (its dynamic batch stays dynamic) and
``openvino.save_model`` writes the IR, with fp32 weights or fp16-compressed ones (the CPU
plugin decompresses them at load: half the size, fp32 arithmetic). The card is embedded in
the IR's ``rt_info`` under ``kaocap_card`` (:func:`read_rt_card`). Layouts are unchanged
(an NCHW image input stays NCHW).

>>> xml = to_openvino_ir("blendshapes_cnn_s_lmk.onnx", "out/blendshapes_cnn_s_lmk.xml", card)  # doctest: +SKIP
>>> read_rt_card(xml)["model_id"]
'blendshapes_cnn_s_lmk'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kaocap.errors import ModelError, OutputError

PRECISIONS = ("fp32", "fp16")
RT_INFO_KEY = "kaocap_card"


def to_openvino_ir(onnx_path: str | Path, xml_path: str | Path, card: Mapping[str, Any], *,
                   precision: str = "fp32") -> Path:  # fmt: skip
    """Write ``xml_path`` and its ``.bin`` from an ONNX file, ``card`` in ``rt_info``.

    precision: ``fp32`` or ``fp16`` (fp16-compressed weights). Returns ``xml_path``.
    """
    import openvino as ov

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    xml_path = Path(xml_path)
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:  # OpenVINO raises its own types with multi-line messages
        raise ModelError(f"OpenVINO cannot convert {Path(onnx_path).name}: {_first_line(exc)}") from exc
    model.set_rt_info(json.dumps(card, sort_keys=True), RT_INFO_KEY)
    try:
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        ov.save_model(model, str(xml_path), compress_to_fp16=precision == "fp16")
    except (OSError, RuntimeError) as exc:
        raise OutputError(f"cannot write {xml_path}: {_first_line(exc)}") from exc
    return xml_path


def read_rt_card(xml_path: str | Path) -> dict[str, Any]:
    """The card embedded in an IR's ``rt_info`` (ModelError when it carries none)."""
    import openvino as ov

    model = ov.Core().read_model(str(xml_path))
    if not model.has_rt_info(RT_INFO_KEY):
        raise ModelError(f"{xml_path} carries no {RT_INFO_KEY} rt_info")
    return json.loads(model.get_rt_info(RT_INFO_KEY).astype(str))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
