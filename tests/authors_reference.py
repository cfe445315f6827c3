"""A re-typing of the authors' TransformerModel (minghchen/CARL_code, models/transformer.py),
used as the oracle for importing their checkpoints. Same module tree, so the same state-dict
keys; same arithmetic (explicit attention with masked_fill, numpy positional codes). Their
ResNet-50 comes from torchvision; ours has the same children, so it stands in for it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from carl_core.backbone import ResNet50


def _attention(q, k, v, mask=None):
    scores = q.matmul(k.transpose(-1, -2)) / np.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -float("inf"))
    return F.softmax(scores, dim=-1).matmul(v)


class MultiheadedAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.H, self.d_model, self.d_k = heads, d, d // heads
        self.linear_Q2d, self.linear_K2d = nn.Linear(d, d), nn.Linear(d, d)
        self.linear_V2d, self.linear_d2Q = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, Q, K, V, mask=None):
        B, S, _ = Q.shape
        q = self.linear_Q2d(Q).view(B, -1, self.H, self.d_k).transpose(-3, -2)
        k = self.linear_K2d(K).view(B, -1, self.H, self.d_k).transpose(-3, -2)
        v = self.linear_V2d(V).view(B, -1, self.H, self.d_k).transpose(-3, -2)
        if mask is not None:
            mask = mask.unsqueeze(1)
        out = _attention(q, k, v, mask).transpose(-3, -2).contiguous().view(B, S, self.d_model)
        return self.linear_d2Q(out)


def sincos(seq_len, d_model, train_len=None):
    odds, evens = np.arange(0, d_model, 2), np.arange(1, d_model, 2)
    enc = np.zeros((seq_len, d_model))
    pos_list = np.arange(seq_len) if train_len is None else np.linspace(0, train_len - 1, num=seq_len)
    for i, pos in enumerate(pos_list):
        enc[i, odds] = np.sin(pos / (10000 ** (odds / d_model)))
        enc[i, evens] = np.cos(pos / (10000 ** (evens / d_model)))
    return torch.from_numpy(enc).unsqueeze(0)


class ResidualConnection(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.norm = nn.LayerNorm(size)

    def forward(self, x, sublayer):
        return x + sublayer(self.norm(x))


class PositionwiseFeedForward(nn.Module):
    def __init__(self, d, d_ff):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, d_ff), nn.Linear(d_ff, d)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, d, heads, d_ff):
        super().__init__()
        self.res_layer0, self.res_layer1 = ResidualConnection(d), ResidualConnection(d)
        self.self_att = MultiheadedAttention(d, heads)
        self.feed_forward = PositionwiseFeedForward(d, d_ff)

    def forward(self, x, mask=None):
        x = self.res_layer0(x, lambda y: self.self_att(y, y, y, mask))
        return self.res_layer1(x, self.feed_forward)


class Encoder(nn.Module):
    def __init__(self, d, heads, d_ff, n):
        super().__init__()
        self.enc_layers = nn.ModuleList(EncoderLayer(d, heads, d_ff) for _ in range(n))

    def forward(self, x, mask=None):
        for layer in self.enc_layers:
            x = layer(x, mask)
        return x


class TransformerEmbModel(nn.Module):
    def __init__(self, cfg, in_channels):
        super().__init__()
        e = cfg["MODEL"]["EMBEDDER_MODEL"]
        self.train_len = cfg["TRAIN"]["NUM_FRAMES"]
        self.num_layers = e["NUM_LAYERS"]
        layers = []
        for channels, _ in e["FC_LAYERS"]:
            channels = channels * e["CAPACITY_SCALAR"]
            layers += [
                nn.Dropout(0.1),
                nn.Linear(in_channels, channels),
                nn.BatchNorm1d(channels),
                nn.ReLU(True),
            ]
            in_channels = channels
        self.fc_layers = nn.Sequential(*layers)
        self.video_emb = nn.Linear(in_channels, e["HIDDEN_SIZE"])
        if self.num_layers > 0:
            self.video_encoder = Encoder(e["HIDDEN_SIZE"], e["NUM_HEADS"], e["D_FF"], e["NUM_LAYERS"])
        self.embedding_layer = nn.Linear(e["HIDDEN_SIZE"], e["EMBEDDING_SIZE"])

    def forward(self, x, video_masks=None):
        b, t, c, h, w = x.shape
        x = F.adaptive_max_pool2d(x.view(b * t, c, h, w), 1).flatten(1)
        x = self.video_emb(self.fc_layers(x)).view(b, t, -1)
        pos = sincos(t, x.shape[-1], self.train_len if t != self.train_len else None)
        x = x + pos.type_as(x)
        if self.num_layers > 0:
            x = self.video_encoder(x, video_masks)
        return self.embedding_layer(x.reshape(b * t, -1)).view(b, t, -1)


class MLPHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, hidden = cfg["MODEL"]["EMBEDDER_MODEL"]["EMBEDDING_SIZE"], cfg["MODEL"]["PROJECTION_SIZE"]
        self.net = nn.Sequential(
            nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True), nn.Linear(hidden, d)
        )

    def forward(self, x):
        b, t, c = x.shape
        return self.net(x.reshape(-1, c)).view(b, t, c)


class TransformerModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        children = list(ResNet50().children())
        self.backbone = nn.Sequential(*children[:-3])
        self.res_finetune = children[-3]
        self.embed = TransformerEmbModel(cfg, 2048)
        self.ssl_projection = MLPHead(cfg)

    def forward(self, x, video_masks=None, project=False):
        b, t, c, h, w = x.shape
        fpb = self.cfg["MODEL"]["BASE_MODEL"]["FRAMES_PER_BATCH"]
        out = []
        for i in range(int(math.ceil(t / fpb))):
            chunk = x[:, i * fpb : (i + 1) * fpb].contiguous().view(-1, c, h, w)
            with torch.no_grad():
                y = self.backbone(chunk)
            y = self.res_finetune(y)
            out.append(y.view(b, -1, *y.shape[1:]))
        x = self.embed(torch.cat(out, dim=1), video_masks=video_masks)
        if project:
            return F.normalize(self.ssl_projection(x), dim=-1)
        return F.normalize(x, dim=-1)


def authors_cfg(train_len=8, layers=3, hidden=256, heads=8, d_ff=1024, fc=(256, 256), scalar=2):
    """Their config, the fields the model reads, with their names (an EasyDict when saved)."""
    return {
        "IMAGE_SIZE": 224,
        "TRAINING_ALGO": "scl",
        "TRAIN": {"NUM_FRAMES": train_len, "BATCH_SIZE": 1, "MAX_EPOCHS": 300},
        "MODEL": {
            "EMBEDDER_TYPE": "transformer",
            "BASE_MODEL": {
                "LAYER": 3,
                "NETWORK": "Resnet50_byol",
                "FRAMES_PER_BATCH": 5,
                "OUT_CHANNEL": 2048,
            },
            "EMBEDDER_MODEL": {
                "HIDDEN_SIZE": hidden,
                "D_FF": d_ff,
                "NUM_HEADS": heads,
                "NUM_LAYERS": layers,
                "CAPACITY_SCALAR": scalar,
                "FC_LAYERS": [[c, True] for c in fc],
                "EMBEDDING_SIZE": 128,
                "FC_DROPOUT_RATE": 0.1,
            },
            "PROJECTION": True,
            "PROJECTION_SIZE": 128,
            "L2_NORMALIZE": True,
        },
        "SCL": {"SOFTMAX_TEMPERATURE": 0.1, "LABEL_VARIENCE": 10.0},
    }


# --- evaluate_finegym.py: the SGD linear classifier, as their evaluate_once runs it on one process
# (NUM_GPUS = 1: no DistributedSampler, no DDP wrapper; .cuda() dropped; all_gather of one value is
# that value). Their pickled per-video files become in-memory (embs, labels) tensors.


class FinegymEval(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        embs, labels = self.items[index]
        valid = labels >= 0
        return embs[valid].float(), labels[valid].long()


def colleta_fn(batch):
    xs, ys = [], []
    for x, y in batch:
        xs.append(x)
        ys.append(y)
    return xs, ys


class LogisticRegression(torch.nn.Module):
    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.linear = torch.nn.Linear(input_dim, output_dim)

    def forward(self, x):
        return self.linear(x)


def finegym_classification(
    train_items, val_items, class_num, fractions, learning_rate, total_e, emb_size=128
):
    """{fraction: the last epoch's validation accuracy}, their loop line for line."""
    accs = {}
    for fraction in fractions:
        batch_size = 10
        num_train = max(1 * batch_size, int(fraction * len(train_items)))
        train_embs = FinegymEval(train_items[:num_train])
        train_embs_loader = torch.utils.data.DataLoader(
            train_embs,
            batch_size=batch_size,
            shuffle=True,
            collate_fn=colleta_fn,
            num_workers=0,
            drop_last=True,
        )
        val_embs = FinegymEval(val_items)
        val_embs_loader = torch.utils.data.DataLoader(
            val_embs,
            batch_size=batch_size,
            shuffle=False,
            collate_fn=colleta_fn,
            num_workers=0,
            drop_last=False,
        )
        model = LogisticRegression(emb_size, class_num)
        criterion = torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9, weight_decay=1e-6)
        val_accs = []
        for e in range(total_e):
            for param_group in optimizer.param_groups:
                param_group["lr"] = learning_rate * (1 + math.cos(math.pi * e / (1.0 * total_e))) / 2
            for embs, labels in train_embs_loader:
                embs = torch.cat(embs, dim=0)
                labels = torch.cat(labels, dim=0)
                optimizer.zero_grad()
                outputs = model(embs)
                loss = criterion(outputs, labels)
                loss.backward()
                optimizer.step()
            correct = 0.0
            total = 0.0
            for embs, labels in val_embs_loader:
                embs = torch.cat(embs, dim=0)
                labels = torch.cat(labels, dim=0)
                outputs = model(embs)
                _, predicted = torch.max(outputs, 1)
                total += labels.size(0)
                correct += (predicted == labels).sum()
            val_accs.append(correct / total)
        accs[fraction] = float(val_accs[-1])
    return accs
