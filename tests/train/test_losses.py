"""The standardised blendshape loss and the global depthwise pooling of the second face CNN."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kaocap.train.cnn import BackboneConfig, MobileNetV3Small
from kaocap.train.losses import (
    LossWeights,
    label_spread,
    masked_blendshape_losses,
    standardised_blendshape_loss,
    total_loss,
)


def _logit(p: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.log(p / (1 - p)))


def test_label_spread_is_the_std_of_valid_labels():
    rng = np.random.default_rng(0)
    labels = rng.random((200, 52)).astype(np.float32) * 0.3
    valid = rng.random((200, 52)) > 0.2
    labels[~valid] = 9.0  # must not count
    valid[:, 5] = False  # no valid label at all: the floor
    std = label_spread(labels, valid).numpy()
    ref = [labels[valid[:, j], j].std() for j in range(52) if j != 5]
    np.testing.assert_allclose(np.delete(std, 5), np.maximum(ref, 0.02), rtol=1e-5)
    assert std[5] == pytest.approx(0.02)


def test_standardised_loss_weighs_a_quiet_shape_like_a_loud_one():
    """Same relative error on a shape spread over 0.6 and on one spread over 0.12: the
    standardised loss is the same for both, L1 sees a fifth of the quiet one."""
    rng = np.random.default_rng(1)
    u, err = rng.uniform(-1, 1, 500), rng.normal(0, 1, 500)
    target = np.stack([0.5 + 0.3 * u, 0.1 + 0.06 * u], axis=1)
    pred = np.clip(np.stack([target[:, 0] + 0.05 * err, target[:, 1] + 0.01 * err], axis=1), 1e-4, 1 - 1e-4)
    logits, target_t = _logit(pred), torch.from_numpy(target)
    std = label_spread(target, np.ones_like(target, bool)).to(torch.float64)
    loud, quiet = (torch.tensor([[c == 0, c == 1]]).expand(500, 2) for c in (0, 1))
    z_loud, z_quiet = (float(standardised_blendshape_loss(logits, target_t, v, std)) for v in (loud, quiet))
    assert z_quiet == pytest.approx(z_loud, rel=0.05)
    l1_loud, l1_quiet = (float(masked_blendshape_losses(logits, target_t, v)[1]) for v in (loud, quiet))
    assert l1_quiet < 0.25 * l1_loud


def test_total_loss_needs_the_spread_when_standardised():
    out = {"blend_logits": torch.zeros(4, 52), "rotation_6d": torch.tensor([[1.0, 0, 0, 0, 1, 0]]).repeat(4, 1),
           "translation_cm": torch.zeros(4, 3)}  # fmt: skip
    batch = {"blendshapes": torch.full((4, 52), 0.5), "valid": torch.ones(4, 52, dtype=torch.bool),
             "rotation_crop": torch.eye(3).expand(4, 3, 3), "translation_cm": torch.zeros(4, 3)}  # fmt: skip
    with pytest.raises(ValueError, match="shape_std"):
        total_loss(out, batch, LossWeights(standardised=0.1))
    _, parts = total_loss(out, batch, LossWeights(standardised=0.1), torch.full((52,), 0.1))
    assert parts["standardised"] == pytest.approx(0.0, abs=1e-9)  # sigmoid(0) = 0.5 = target


def test_gdconv_pooling_sees_where_a_feature_is():
    """Average pooling gives the same features when the cells of the final map are shuffled (a
    pattern left of the eye or right of it); the global depthwise convolution does not (that is
    why it is there: gaze, mouth corners). The map is the 4 x 4 one of a 128 px crop."""
    torch.manual_seed(0)
    cells = torch.randn(2, 1, 16).expand(2, 576, 16).clone()
    cells[1] = cells[0][:, torch.randperm(16)]
    for pool in ("avg", "gdconv"):
        net = MobileNetV3Small(BackboneConfig(pool=pool, image_size=128)).eval()
        net.features = torch.nn.Sequential()  # the trunk's output stands in for an image's
        with torch.no_grad():
            a, b = net(cells.view(2, 576, 4, 4) * 0.25 + 0.5)  # forward undoes (x - 0.5) / 0.25
        assert a.shape == (576,)
        assert torch.allclose(a, b, atol=1e-5) == (pool == "avg"), pool
    with pytest.raises(ValueError, match="pool"):
        MobileNetV3Small(BackboneConfig(pool="max"))
