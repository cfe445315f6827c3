"""Configuration: one dataclass per concern, presets as YAML.

The presets mirror the authors' configs (``configs/scl_transformer*_config.yml`` of
minghchen/CARL_code) under readable names; ``small`` is a CPU-sized variant on
EfficientNet-Lite0. A config is plain data: it round-trips through ``to_dict`` /
``from_dict`` so checkpoints can store it without pickling code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError


@dataclass
class ModelConfig:
    backbone: str = "resnet50"  # a name in carl_core.backbone's registry
    backbone_weights: str = "imagenet"  # "imagenet" | "random" | a local state-dict file
    finetune_blocks: int | None = None  # backbone blocks trained (None: the backbone's default)
    frames_per_batch: int = 40  # frames through the backbone at once: bounds memory
    image_size: int = 224
    fc_layers: tuple[int, ...] = (512, 512)  # widths after the authors' CAPACITY_SCALAR (2 x 256)
    dropout: float = 0.1
    hidden_size: int = 256  # transformer width
    num_heads: int = 8
    d_ff: int = 1024
    num_layers: int = 3
    embedding_size: int = 128
    projection_size: int = 128  # hidden width of the projection head (theirs: PROJECTION_SIZE)
    train_len: int = 240  # clip length in training; other lengths get rescaled positions ("clip")
    # "clip": the authors' positions (place in the clip); "time": band attention over
    # +-attention_span seconds with rotary codes of time (see model.py)
    positions: str = "clip"
    attention_span: float = 0.5
    # pose models (backbone "pose"): how the body's facing is made comparable across videos,
    # "sequence" (rotate each video to its mean facing), "augment" (learn it), "none"
    pose_facing: str = "sequence"
    # what a pose model reads per frame (pose_features.PoseFeatures): "invariant" (angles,
    # heights, spreads: blind to camera yaw, body size and mirroring) or "world" (coordinates)
    pose_input: str = "invariant"
    # a pose model's embedding: this share of the cosine from the fixed pose descriptor
    # (pose_features.pose_descriptor), the rest from the learned sequence embedding; see
    # CARLModel.embed_pose. 0 keeps the learned embedding alone.
    descriptor_weight: float = 0.0
    # weight of the descriptor's change over +-0.1 s beside it (pose_features.motion_descriptor):
    # tells a held pose from the frames that leave it. 0 reads the pose alone.
    descriptor_motion: float = 0.0
    # the "human" model: a pose model fused with frozen ImageNet features of this backbone
    # (fusion.py); pose_weight is the pose stream's share of the cosine where a person is found
    visual_stream: str | None = None
    pose_weight: float = 0.8
    # its share in each frame's context-free embedding, what a picture is compared with: the
    # picture then also tells one moment of a video from another with the same pose
    frame_pose_weight: float = 0.8

    def __post_init__(self) -> None:
        if self.positions not in ("clip", "time"):
            raise ConfigError(f"model.positions must be 'clip' or 'time', not {self.positions!r}")
        if not (isinstance(self.attention_span, int | float) and self.attention_span > 0):
            raise ConfigError(
                f"model.attention_span must be a positive number of seconds, not {self.attention_span!r}"
            )
        if self.visual_stream is not None and self.backbone != "pose":
            raise ConfigError(
                "model.visual_stream fuses a pose model with pictures: it needs backbone 'pose'"
            )
        for name in ("pose_weight", "frame_pose_weight"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"model.{name} must lie between 0 and 1, not {getattr(self, name)!r}")
        if not 0 <= self.descriptor_weight <= 1:
            raise ConfigError(
                f"model.descriptor_weight must lie between 0 and 1, not {self.descriptor_weight!r}"
            )
        if not (isinstance(self.descriptor_motion, int | float) and self.descriptor_motion >= 0):
            raise ConfigError(
                f"model.descriptor_motion must be a number of at least 0, not {self.descriptor_motion!r}"
            )
        if self.pose_input not in ("invariant", "world"):
            raise ConfigError(f"model.pose_input must be 'invariant' or 'world', not {self.pose_input!r}")
        if self.pose_facing not in ("sequence", "augment", "none"):
            raise ConfigError(
                f"model.pose_facing must be 'sequence', 'augment' or 'none', not {self.pose_facing!r}"
            )
        # Attention splits the width evenly between heads.
        if not (isinstance(self.num_heads, int) and self.num_heads >= 1):
            raise ConfigError(f"model.num_heads must be a whole number of at least 1, got {self.num_heads!r}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"model.hidden_size ({self.hidden_size}) must be divisible by model.num_heads "
                f"({self.num_heads}): choose a width that is a multiple of the number of heads"
            )


@dataclass
class DataConfig:
    num_frames: int = 240  # frames per view in training (the authors' TRAIN.NUM_FRAMES)
    sampling_region: float = 1.5
    consistent_offset: float = 0.2
    # time_augment's block: the whole video (Pouring, PennAction) or one clip (FineGym)
    window: Literal["video", "clip"] = "video"
    fps: float | None = None  # resample videos to this rate when reading a folder of videos
    random_crop: bool = True
    random_flip: bool = True
    color_jitter: bool = True
    blur: bool = True
    grayscale: bool = True
    # synthetic human motion (`--data motion`): most repetitions in one training sequence; one
    # teaches a movement's phases without the count of reps done so far to lean on
    motion_max_reps: int = 4
    # what the two views of a synthetic sequence show: "one_movement" (one movement by two bodies
    # under two cameras, frame k of one is frame k of the other) or "two_performances" (two
    # performances of the action, other tempo, amplitude and form too; frames correspond where
    # their place in the movement, MotionSample.position, agrees)
    motion_views: Literal["one_movement", "two_performances"] = "one_movement"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("window", ("video", "clip")),
            ("motion_views", ("one_movement", "two_performances")),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"data.{name}: {getattr(self, name)!r} is unknown; use {' or '.join(allowed)}"
                )


@dataclass
class LossConfig:
    temperature: float = 0.1
    label_variance: float = 10.0
    weak: bool = False  # also pair videos that share a video-level label (DTW-aligned)
    weak_after_epochs: int = 2  # DTW on untrained embeddings pairs noise: start once they mean something
    weak_weight: float = 1.0  # weight of the cross-video loss beside the self-supervised one


@dataclass
class TrainConfig:
    epochs: int = 300
    batch_size: int = 4  # videos per step (each gives two views)
    lr: float = 1e-4
    warmup_epochs: int = 1
    final_lr: float = 0.0
    weight_decay: float = 1e-5
    grad_clip: float = 10.0
    save_every: int = 50  # epochs between periodic checkpoints
    seed: int = 1
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    num_workers: int = 2
    cached_features: bool = False  # CPU fast path: train on precomputed frozen-backbone features
    feature_copies: int = 4  # augmented copies per video for the cached-feature path

    def __post_init__(self) -> None:
        # counts a run divides by or loops over: a clear message here, not a ZeroDivisionError later
        for name, least in (("epochs", 0), ("batch_size", 1), ("save_every", 1), ("feature_copies", 1),
                            ("num_workers", 0), ("warmup_epochs", 0)):  # fmt: skip
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= least):
                raise ConfigError(f"train.{name} must be a whole number of at least {least}, not {value!r}")


@dataclass
class CarlConfig:
    preset: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CarlConfig:
        return _build(cls, d, "config")

    def with_overrides(self, **sections: dict[str, Any]) -> CarlConfig:
        """A copy with some fields replaced, e.g. ``with_overrides(train={"epochs": 2})``."""
        d = self.to_dict()
        for section, values in sections.items():
            if section not in d or not isinstance(d[section], dict):
                raise ConfigError(f"unknown config section {section!r}")
            d[section].update(values)
        return CarlConfig.from_dict(d)


PRESETS = ("pouring", "penn_action", "finegym", "small", "pose", "human")


def load_preset(name: str) -> CarlConfig:
    """The named preset, or a YAML file path of the same layout."""
    path = Path(name)
    if name.endswith((".yaml", ".yml")) and path.is_file():
        text = path.read_text()
    elif name in PRESETS:
        text = resources.files("carl_core.presets").joinpath(f"{name}.yaml").read_text()
    else:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)} or pass a YAML file")
    try:
        d = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"preset {name!r} is not valid YAML: {e}") from None
    d.setdefault("preset", path.stem if path.suffix else name)
    return CarlConfig.from_dict(d)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _build(cls: type, d: Any, where: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(d).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(unknown)}")
    kwargs = {}
    for name, value in d.items():
        sub = _SECTIONS.get(name) if cls is CarlConfig else None
        if sub is not None:
            kwargs[name] = _build(sub, value, f"{where}.{name}")
        elif name == "fc_layers":
            kwargs[name] = tuple(int(v) for v in value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "loss": LossConfig,
    "train": TrainConfig,
}
