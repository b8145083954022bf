"""The learners, in plain PyTorch (training and export only; inference runs the exported ONNX).

Every learner maps its inputs to a dict of

* ``blend_logits`` (N, 52): logits of the 52 ARKit blendshapes (sigmoid -> 0..1, BLENDSHAPES order),
* ``rotation_6d`` (N, 6): the head rotation as the upright crop sees it, first two columns of
  the matrix (Zhou et al. 2019, "On the continuity of rotation representations"),
* ``translation_cm`` (N, 3): camera frame, cm,
* ``landmarks`` (N, 478, 3), image learners with ``landmark_aux`` only: crop-normalised
  landmarks (0..1 across the crop), trained as an auxiliary target and exported as a fourth
  output: the pipeline tracks the face (next frame's ROI) and solves translation from them.
* ``roi`` (N, 4) and ``presence_logit`` (N,), head learners (:class:`HeadCNN`) only: where the
  next crop should be, as seen in this one (:data:`ROI_FIELDS`), and whether a head is in it
  at all; the pipeline follows a head through views where no face is visible with them.

Inputs (see :mod:`kaocap.blendshapes.learned` for how the runtime builds them): ``features``
(N, F) geometric features, ``mesh`` (N, 1434) normalised mesh, ``image`` (N, 3, S, S) RGB 0..1.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from kaocap.constants import BLENDSHAPES, NUM_LANDMARKS
from kaocap.train.cnn import BackboneConfig, MobileNetV3Small

NUM_BLENDSHAPES = len(BLENDSHAPES)
#: Translation head: translation_cm = TRANSLATION_MEAN_CM + TRANSLATION_SCALE_CM * raw output.
TRANSLATION_MEAN_CM = (0.0, 0.0, -50.0)
TRANSLATION_SCALE_CM = 10.0
_IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
#: The ``roi`` output of a head learner: the next crop's centre minus this crop's centre (x, y,
#: in crop sides), log of its side over this crop's side, its rotation minus this crop's (rad).
ROI_FIELDS = ("dx", "dy", "log_scale", "rotation_rad")


def rotation_6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """(N, 6) -> (N, 3, 3) rotation matrices (Gram-Schmidt; columns b1, b2, b1 x b2)."""
    a1, a2 = x[:, :3], x[:, 3:]
    b1 = nn.functional.normalize(a1, dim=1, eps=1e-8)
    b2 = nn.functional.normalize(a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1, dim=1, eps=1e-8)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=1)], dim=2)


def matrix_to_rotation_6d(r: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) -> (N, 6): the first two columns, concatenated."""
    return torch.cat([r[:, :, 0], r[:, :, 1]], dim=1)


class Heads(nn.Module):
    """Shared output heads on an (N, D) embedding."""

    def __init__(self, dim: int, landmark_aux: bool = False) -> None:
        super().__init__()
        self.blend = nn.Linear(dim, NUM_BLENDSHAPES)
        self.rotation = nn.Linear(dim, 6)
        self.translation = nn.Linear(dim, 3)
        self.landmarks = nn.Linear(dim, NUM_LANDMARKS * 3) if landmark_aux else None
        with torch.no_grad():
            self.blend.bias.fill_(-3.0)  # most shapes rest near 0
            self.rotation.weight.mul_(0.1)
            self.rotation.bias.copy_(torch.tensor(_IDENTITY_6D))
            self.translation.weight.mul_(0.1)
            self.translation.bias.zero_()
        self.register_buffer("t_mean", torch.tensor(TRANSLATION_MEAN_CM))

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {
            "blend_logits": self.blend(z),
            "rotation_6d": self.rotation(z),
            "translation_cm": self.t_mean + TRANSLATION_SCALE_CM * self.translation(z),
        }
        if self.landmarks is not None:
            out["landmarks"] = 0.5 + self.landmarks(z).view(-1, NUM_LANDMARKS, 3)
        return out


def mlp(dims: tuple[int, ...], dropout: float) -> nn.Sequential:
    """Linear -> SiLU -> Dropout for each consecutive pair of ``dims``."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b), nn.SiLU(inplace=True), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class Standardise(nn.Module):
    """(x - mean) / std with statistics of the training set, stored as buffers (exported)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_stats(self, x: torch.Tensor) -> None:
        """Fit on (N, dim) finite training inputs."""
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(x.std(dim=0).clamp_min(1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Learner(nn.Module):
    """Base: ``input_names`` in forward order; ``input_kind`` as in kaocap.blendshapes.learned."""

    input_names: tuple[str, ...] = ()
    input_kind: str = ""

    def input_scalers(self) -> dict[str, Standardise]:
        """The Standardise module of each vector input (fitted before training)."""
        return {}


class FeatureMLP(Learner):
    """(a) MLP on geometric features (N, F) -> heads."""

    input_names, input_kind = ("features",), "features"

    def __init__(self, num_features: int, hidden: tuple[int, ...] = (256, 256), dropout: float = 0.1) -> None:
        super().__init__()
        self.scale = Standardise(num_features)
        self.body = mlp((num_features, *hidden), dropout)
        self.heads = Heads(hidden[-1])

    def input_scalers(self) -> dict[str, Standardise]:
        return {"features": self.scale}

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.body(self.scale(features)))


class MeshMLP(FeatureMLP):
    """(b) MLP on the normalised mesh (N, 1434) -> heads."""

    input_names, input_kind = ("mesh",), "mesh"

    def __init__(self, hidden: tuple[int, ...] = (512, 256), dropout: float = 0.1) -> None:
        super().__init__(NUM_LANDMARKS * 3, hidden, dropout)

    def input_scalers(self) -> dict[str, Standardise]:
        return {"mesh": self.scale}

    def forward(self, mesh: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.body(self.scale(mesh)))


class HybridMLP(Learner):
    """(c) two branches (features, mesh) concatenated -> MLP -> heads."""

    input_names, input_kind = ("features", "mesh"), "hybrid"

    def __init__(self, num_features: int, branch: tuple[int, int] = (128, 256), hidden: int = 256,
                 dropout: float = 0.1) -> None:  # fmt: skip
        super().__init__()
        self.scale_f, self.scale_m = Standardise(num_features), Standardise(NUM_LANDMARKS * 3)
        self.branch_f = mlp((num_features, branch[0]), dropout)
        self.branch_m = mlp((NUM_LANDMARKS * 3, branch[1]), dropout)
        self.body = mlp((sum(branch), hidden), dropout)
        self.heads = Heads(hidden)

    def input_scalers(self) -> dict[str, Standardise]:
        return {"features": self.scale_f, "mesh": self.scale_m}

    def forward(self, features: torch.Tensor, mesh: torch.Tensor) -> dict[str, torch.Tensor]:
        z = torch.cat([self.branch_f(self.scale_f(features)), self.branch_m(self.scale_m(mesh))], dim=1)
        return self.heads(self.body(z))


class ImageCNN(Learner):
    """(d) MobileNetV3-small-class CNN on the (N, 3, S, S) RGB 0..1 crop -> embedding -> heads."""

    input_names, input_kind = ("image",), "image"

    def __init__(self, width: float = 1.0, embed: int = 256, dropout: float = 0.1, landmark_aux: bool = False,
                 pool: str = "avg", image_size: int = 128) -> None:  # fmt: skip
        super().__init__()
        self.backbone = MobileNetV3Small(BackboneConfig(width=width, pool=pool, image_size=image_size))
        self.embed = nn.Sequential(nn.Linear(self.backbone.out_channels, embed), nn.Hardswish(inplace=True),
                                   nn.Dropout(dropout))  # fmt: skip
        self.heads = Heads(embed, landmark_aux=landmark_aux)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.embed(self.backbone(image)))


class HeadCNN(ImageCNN):
    """A head learner: :class:`ImageCNN` plus the ``roi`` and ``presence_logit`` heads, trained
    on every yaw (the back of the head included) and on crops without a head (presence 0)."""

    def __init__(self, width: float = 0.75, embed: int = 192, dropout: float = 0.1) -> None:
        super().__init__(width=width, embed=embed, dropout=dropout)
        self.roi = nn.Linear(embed, len(ROI_FIELDS))
        self.presence = nn.Linear(embed, 1)
        with torch.no_grad():
            self.roi.weight.mul_(0.1)
            self.roi.bias.zero_()

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.embed(self.backbone(image))
        out = self.heads(z)
        out["roi"] = self.roi(z)
        out["presence_logit"] = self.presence(z)[:, 0]
        return out


def has_head_outputs(learner: nn.Module) -> bool:
    """True for head learners (exports with ``roi`` and ``presence`` outputs)."""
    return isinstance(learner, HeadCNN)


def has_landmarks(learner: nn.Module) -> bool:
    """True when the learner has the landmark head (and its export a ``landmarks`` output)."""
    return any(isinstance(m, Heads) and m.landmarks is not None for m in learner.modules())


class ExportWrapper(nn.Module):
    """What the ONNX graph holds: inputs by name -> (blendshapes 0..1, rotation_6d,
    translation_cm[, landmarks][, roi, presence 0..1])."""

    def __init__(self, learner: Learner) -> None:
        super().__init__()
        self.learner = learner

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.learner(*inputs)
        values = (torch.sigmoid(out["blend_logits"]), out["rotation_6d"], out["translation_cm"])
        if "landmarks" in out:
            values = (*values, out["landmarks"])
        if "roi" in out:
            values = (*values, out["roi"], torch.sigmoid(out["presence_logit"]))
        return values


def count_parameters(learner: nn.Module) -> int:
    """Number of parameters (all of them are exported)."""
    return sum(p.numel() for p in learner.parameters())
