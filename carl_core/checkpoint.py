"""Checkpoints: the project's own format, and safe import of the authors' released ones.

Own format: a dict of plain data (config as a dict, state dicts, counters, RNG states),
read with ``torch.load(weights_only=True)``. The authors' ``checkpoint_epoch_XXXXX.pth``
holds their config as an ``easydict.EasyDict`` (and sometimes an ``argparse.Namespace``);
those go through ``carl_core.safe_pickle`` (the one restricted unpickler, shared with the
dataset pickles), which reads them as plain dicts and refuses any other class: a checkpoint
never runs code on load. Their parameter names are
then mapped onto ours in one readable function, ``_authors_key``.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from .backbone import authors_backbone_key, finetune_blocks_for_authors_layer
from .config import CarlConfig, ModelConfig
from .errors import CheckpointError
from .io import atomic_open
from .model import CARLModel
from .safe_pickle import TorchPickle, plain

FORMAT = "carl-studio"
VERSION = 1


# --- writing -----------------------------------------------------------------------------


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Atomically write ``payload`` (plain data and tensors) to ``path``."""
    with atomic_open(path, "wb") as f:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, f)
    return Path(path)


def model_payload(model: CARLModel, config: CarlConfig, **extra: Any) -> dict[str, Any]:
    return {"config": config.to_dict(), "model": model.state_dict(), **extra}


def strip_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Copy a training checkpoint keeping what inference needs: config, weights, step, log.

    The optimiser and RNG states (about half of a ``small`` run's file) only serve ``--resume``.
    Works on our files and on the authors' (then written in our format).
    """
    raw = read_checkpoint(src)
    if raw.get("format") == FORMAT:
        return save_checkpoint(dst, {k: raw[k] for k in ("config", "model", "step", "log") if k in raw})
    model = load_checkpoint(src)  # the authors': checked and renamed on the way
    return save_checkpoint(dst, model_payload(model, config_from_authors(raw["cfg"])))


# --- reading -----------------------------------------------------------------------------


def read_checkpoint(path: str | Path, device: str | torch.device | None = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, read without executing pickled code.

    Our own files pass torch's ``weights_only`` loader; the authors' (which pickle an EasyDict)
    go through a restricted unpickler that admits only plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): the file was not written completely")
    where = device or "cpu"
    try:
        try:
            ckpt = torch.load(path, map_location=where, weights_only=True)
        except pickle.UnpicklingError:
            ckpt = torch.load(path, map_location=where, weights_only=False, pickle_module=TorchPickle)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if not found:
            raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({e})") from None
        what = f" (it needs {found.group(1)})"
        raise CheckpointError(
            f"{path} holds objects that are not plain data{what}; CARL Studio refuses to run code "
            "from a checkpoint. Re-save it as a plain state dict."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({str(e).splitlines()[0]})"
        ) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"{path} is not a CARL checkpoint: expected a dict, found {type(ckpt).__name__}"
        )
    return plain(ckpt)


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> CARLModel:
    """A CARLModel in eval mode from one of our checkpoints or one of the authors'.

    For ours, the backbone is rebuilt from the saved weights, never downloaded.
    """
    ckpt = read_checkpoint(path)
    if ckpt.get("format") == FORMAT:
        config = CarlConfig.from_dict(ckpt["config"])
        state = ckpt["model"]
    elif "model_state" in ckpt and "cfg" in ckpt:
        config = config_from_authors(ckpt["cfg"])
        state = state_from_authors(ckpt["model_state"])
    else:
        raise CheckpointError(
            f"{path} is neither a CARL Studio checkpoint nor one of the authors' "
            "(checkpoint_epoch_XXXXX.pth with model_state and cfg)"
        )
    # The weights come from the file: build the backbone with random weights, no download.
    from .fusion import build_model

    model = build_model(config.model, weights="random")
    load_state(model, state, str(path))
    model.cfg = config.model
    device = torch.device(device) if device is not None else torch.device("cpu")
    return model.to(device).eval()


def load_state(model: CARLModel, state: dict[str, torch.Tensor], source: str) -> None:
    """Strictly load ``state``; a mismatch becomes one clear CheckpointError."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} of wrong shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})"
            )
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(
            f"checkpoint {source} does not fit the model its config describes: " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)


# --- the authors' checkpoints ----------------------------------------------------------------


def config_from_authors(cfg: dict[str, Any]) -> CarlConfig:
    """Our config from their EasyDict config (read as plain dicts)."""
    try:
        m, emb = cfg["MODEL"], cfg["MODEL"]["EMBEDDER_MODEL"]
        if m.get("EMBEDDER_TYPE", "transformer") != "transformer":
            raise CheckpointError(
                f"this checkpoint uses the authors' {m['EMBEDDER_TYPE']!r} embedder; only their "
                "transformer model (TransformerModel) is supported"
            )
        layer = int(m["BASE_MODEL"].get("LAYER", 3))
        scalar = int(emb.get("CAPACITY_SCALAR", 1))
        model = ModelConfig(
            backbone="resnet50",
            backbone_weights="random",
            finetune_blocks=finetune_blocks_for_authors_layer(layer),
            frames_per_batch=int(m["BASE_MODEL"].get("FRAMES_PER_BATCH", 40)),
            image_size=int(cfg.get("IMAGE_SIZE", 224)),
            fc_layers=tuple(int(c) * scalar for c, _ in emb["FC_LAYERS"]),
            dropout=float(emb["FC_DROPOUT_RATE"]),
            hidden_size=int(emb["HIDDEN_SIZE"]),
            num_heads=int(emb["NUM_HEADS"]),
            d_ff=int(emb["D_FF"]),
            num_layers=int(emb["NUM_LAYERS"]),
            embedding_size=int(emb["EMBEDDING_SIZE"]),
            projection_size=int(m.get("PROJECTION_SIZE", 128)),
            train_len=int(cfg["TRAIN"]["NUM_FRAMES"]),
        )
        config = CarlConfig(preset="authors", model=model)
        config.data.num_frames = model.train_len
        config.loss.temperature = float(cfg.get("SCL", {}).get("SOFTMAX_TEMPERATURE", 0.1))
        config.loss.label_variance = float(cfg.get("SCL", {}).get("LABEL_VARIENCE", 10.0))
        return config
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"the checkpoint's cfg lacks a field CARL Studio needs: {e}") from None


_HEAD_RENAMES = [
    (r"^embed\.fc_layers\.", "head.fc."),
    (r"^embed\.video_emb\.", "head.to_hidden."),
    (r"^embed\.embedding_layer\.", "head.to_embedding."),
    (r"^embed\.video_encoder\.enc_layers\.(\d+)\.res_layer0\.norm\.", r"head.layers.\1.norm1."),
    (r"^embed\.video_encoder\.enc_layers\.(\d+)\.res_layer1\.norm\.", r"head.layers.\1.norm2."),
    (r"^embed\.video_encoder\.enc_layers\.(\d+)\.self_att\.linear_Q2d\.", r"head.layers.\1.attn.q."),
    (r"^embed\.video_encoder\.enc_layers\.(\d+)\.self_att\.linear_K2d\.", r"head.layers.\1.attn.k."),
    (r"^embed\.video_encoder\.enc_layers\.(\d+)\.self_att\.linear_V2d\.", r"head.layers.\1.attn.v."),
    (r"^embed\.video_encoder\.enc_layers\.(\d+)\.self_att\.linear_d2Q\.", r"head.layers.\1.attn.out."),
    (r"^embed\.video_encoder\.enc_layers\.(\d+)\.feed_forward\.fc1\.", r"head.layers.\1.ff.0."),
    (r"^embed\.video_encoder\.enc_layers\.(\d+)\.feed_forward\.fc2\.", r"head.layers.\1.ff.2."),
    (r"^ssl_projection\.net\.", "projection.net."),
]


def _authors_key(key: str) -> str | None:
    """Their parameter name -> ours (None: not part of the encoder, e.g. their classifier)."""
    key = key.removeprefix("module.")
    for pattern, repl in _HEAD_RENAMES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    # Their backbone / res_finetune are laid out as our Backbone's frozen / finetune parts.
    ours = authors_backbone_key(key)
    return None if ours is None else "backbone." + ours


def state_from_authors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        new = _authors_key(k)
        if new is not None:
            out[new] = v
    return out
