"""The action library of synthetic human motion: keyframed joint angles with named phases.

A template is a ``ready`` pose and a chain of keys. Key ``k`` is the pose reached at the end of a
movement that lasts ``dur`` seconds at the template's tempo, and ``phase`` names that movement.
``carl_core.motion`` strings reps of the chain together, re-times them and adds everything a
model should become invariant to. Phase 0 is always ``ready``: the rest in the ready pose before
the first rep and between reps (and, for a non-cyclic action, the return to it).

Joint angles are in degrees, anatomical and mirror-symmetric, so ``l_`` and ``r_`` channels mean
the same movement on either side; a channel named without a side sets both. Signs:

- root ``yaw``: the whole body turns to its left; ``turn``: the pelvis and everything above it
  turn to the left over planted legs (a golf or tennis rotation); ``pitch``: the body tips
  forward (90 lies face down, -90 on its back); ``roll``: tilts to the left. ``x``, ``y``, ``z``:
  metres to the left, up (airborne, on top of the ground contact) and forward.
- ``spine_flex``: bends forward; ``spine_side``: to the left; ``spine_twist``: chest turns left.
  ``neck_*`` the same for the head (``neck_flex`` looks down).
- ``shoulder_flex``: raises the arm forward (180 overhead), ``shoulder_abd``: sideways (negative
  crosses the body), ``shoulder_rot``: external rotation (a bent forearm turns out, then up).
- ``elbow``, ``knee``: flexion. ``wrist_flex``: palm-side bend; ``wrist_pron``: forearm
  pronation (0: palm facing the thigh, thumb forward; -90 palm forward).
- ``hip_flex``: thigh forward; ``hip_abd``: thigh out; ``hip_rot``: toes out.
- ``ankle``: plantar flexion added to a foot kept flat on the ground where the template says
  ``flat_feet`` (so 40 raises the heel).

Templates are written for a right-handed (right-footed) person; ``carl_core.motion`` mirrors
whole sequences for left-handers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

SIDES = ("l", "r")
ROOT = ("x", "y", "z", "yaw", "turn", "pitch", "roll")
AXIAL = ("spine_flex", "spine_side", "spine_twist", "neck_flex", "neck_side", "neck_turn")
LIMB = (
    "shoulder_flex", "shoulder_abd", "shoulder_rot", "elbow", "wrist_flex", "wrist_dev", "wrist_pron",
    "hip_flex", "hip_abd", "hip_rot", "knee", "ankle",
)  # fmt: skip
CHANNELS = ROOT + AXIAL + tuple(f"{s}_{j}" for s in SIDES for j in LIMB)
CHANNEL = {name: i for i, name in enumerate(CHANNELS)}
# Channels that change sign under a left-right mirror (the rest swap l_ with r_).
LATERAL = ("x", "yaw", "turn", "roll", "spine_side", "spine_twist", "neck_side", "neck_turn")

# Relaxed standing: arms hang a little away from the body, toes turned out a little.
STAND = MappingProxyType(
    {"shoulder_abd": 8.0, "elbow": 12.0, "hip_abd": 4.0, "hip_rot": 8.0, "knee": 3.0, "wrist_flex": 5.0}
)


def expand(pose: Mapping[str, float]) -> dict[str, float]:
    """Channel values with side-less limb names (``elbow``) set on both sides."""
    out: dict[str, float] = {}
    for name, value in pose.items():
        if name in LIMB:
            for s in SIDES:
                out[f"{s}_{name}"] = float(value)
        elif name in CHANNEL:
            out[name] = float(value)
        else:
            raise KeyError(f"unknown motion channel {name!r}")
    return out


@dataclass(frozen=True)
class Key:
    phase: str
    dur: float
    pose: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    """One action: the ready pose (over ``STAND``), its keys, and how the body meets the ground.

    cyclic: the last key is the ready pose again (a squat); otherwise (a golf swing) the body
    holds the last pose and returns to ``ready`` before another rep.
    support: ``feet`` (feet on the floor, a planted foot does not slide), ``plank`` (hands and
    toes on the floor), ``lying`` (the lowest point on the floor, the feet stay put), ``hang``
    (the hands hold a bar that does not move).
    alternate: chance that a sequence alternates sides between reps (lunges, curls).
    reps: the most reps in one sequence. ``style``: degrees of per-person variation of each key.
    """

    name: str
    ready: Mapping[str, float]
    keys: tuple[Key, ...]
    cyclic: bool = True
    support: str = "feet"
    flat_feet: bool = True
    alternate: float = 0.0
    reps: int = 5
    style: float = 6.0

    @property
    def phases(self) -> tuple[str, ...]:
        names = ["ready"]
        for k in self.keys:
            if k.phase != names[-1]:
                if k.phase in names:
                    raise ValueError(f"{self.name}: phase {k.phase!r} comes back after another phase")
                names.append(k.phase)
        return tuple(names)

    def pose(self, i: int) -> np.ndarray:
        """Channel values (in ``CHANNELS`` order) of key ``i``, or of the ready pose for ``i = -1``;
        channels a key leaves out keep their ready value."""
        base = {**dict.fromkeys(CHANNELS, 0.0), **expand(STAND), **expand(self.ready)}
        pose = base if i < 0 else {**base, **expand(self.keys[i].pose)}
        return np.array([pose[n] for n in CHANNELS])


_GOLF_ADDRESS = {
    "pitch": 32.0, "spine_flex": 10.0, "hip_flex": 42.0, "knee": 22.0, "hip_abd": 9.0, "hip_rot": 5.0,
    "l_shoulder_flex": 49.0, "l_shoulder_abd": -12.0, "l_elbow": 0.0, "r_shoulder_flex": 47.0,
    "r_shoulder_abd": -21.0, "r_elbow": 5.0, "wrist_pron": 20.0, "neck_flex": 30.0,
}  # fmt: skip

# Mid-air in a jumping jack: arms level, feet between together and apart.
_JACK_HOP = {"shoulder_abd": 85, "elbow": 12, "hip_abd": 11, "y": 0.08, "ankle": 25, "knee": 8}

# fmt: off
ACTION_LIST: tuple[Action, ...] = (
    Action(
        "squat",
        ready={},
        keys=(
            Key("descent", 1.1, {
                "pitch": 30, "spine_flex": 15, "hip_flex": 112, "knee": 118, "shoulder_flex": 115,
                "shoulder_abd": 5, "elbow": 8, "neck_flex": -25,
            }),
            Key("ascent", 1.0),
        ),
        reps=6,
    ),
    Action(
        "lunge",
        ready={},
        keys=(
            Key("step", 0.55, {"l_hip_flex": 55, "l_knee": 60, "pitch": 3}),
            Key("descent", 0.8, {
                "l_hip_flex": 88, "l_knee": 92, "r_hip_flex": -12, "r_knee": 100, "r_ankle": 55, "pitch": 4,
                "shoulder_abd": 12,
            }),
            Key("ascent", 0.8, {
                "l_hip_flex": 40, "l_knee": 25, "r_hip_flex": -15, "r_knee": 10, "r_ankle": 25,
            }),
            Key("return", 0.55),
        ),
        alternate=0.6,
        reps=6,
    ),
    Action(
        "push_up",
        ready={
            "pitch": 72, "shoulder_flex": 74, "shoulder_abd": 12, "elbow": 0, "wrist_flex": -80,
            "hip_flex": 0, "hip_abd": 3, "hip_rot": 0, "knee": 0, "ankle": 0, "neck_flex": -20,
        },
        keys=(
            Key("descent", 1.0, {"pitch": 86, "shoulder_flex": -28, "shoulder_abd": 35, "elbow": 112}),
            Key("ascent", 0.9),
        ),
        support="plank",
        flat_feet=False,
        reps=8,
    ),
    Action(
        "sit_up",
        ready={
            "pitch": -88, "hip_flex": 45, "knee": 100, "hip_abd": 6, "shoulder_flex": 35, "shoulder_abd": -25,
            "elbow": 140, "neck_flex": 10,
        },
        keys=(
            Key("curl up", 1.1, {"pitch": -60, "spine_flex": 62, "hip_flex": 73, "neck_flex": 25}),
            Key("lower", 1.1),
        ),
        support="lying",
        reps=6,
    ),
    Action(
        "jumping_jack",
        ready={},
        keys=(
            Key("open", 0.2, _JACK_HOP),
            Key("open", 0.22, {"shoulder_abd": 168, "elbow": 15, "hip_abd": 20, "hip_rot": 15, "knee": 14}),
            Key("close", 0.2, _JACK_HOP),
            Key("close", 0.22, {"knee": 12}),
        ),
        reps=12,
        style=4.0,
    ),
    Action(
        "bicep_curl",
        ready={"wrist_pron": -75, "elbow": 8, "shoulder_abd": 6},
        keys=(
            Key("lift", 0.9, {"elbow": 142, "shoulder_flex": 14, "wrist_flex": 20}),
            Key("lower", 1.1),
        ),
        alternate=0.35,
        reps=8,
    ),
    Action(
        "overhead_press",
        ready={"shoulder_abd": 62, "shoulder_flex": 22, "shoulder_rot": 88, "elbow": 128, "wrist_pron": -40},
        keys=(
            Key("press", 0.9, {"shoulder_abd": 165, "shoulder_flex": 10, "elbow": 10, "neck_flex": -8}),
            Key("lower", 1.0),
        ),
        reps=8,
    ),
    Action(
        "deadlift",
        ready={"shoulder_flex": 4, "shoulder_abd": 4, "elbow": 4, "wrist_pron": 70},
        keys=(
            Key("lower", 1.3, {
                "pitch": 58, "spine_flex": 10, "hip_flex": 92, "knee": 48, "shoulder_flex": 66,
                "neck_flex": -35,
            }),
            Key("lift", 1.1),
        ),
        reps=6,
    ),
    Action(
        "golf_swing",
        ready=_GOLF_ADDRESS,
        keys=(
            Key("backswing", 0.45, {
                "turn": -20, "spine_twist": -35, "l_shoulder_flex": 52, "l_shoulder_abd": -4, "l_elbow": 1,
                "r_shoulder_flex": 51, "r_shoulder_abd": -32, "r_elbow": 3, "neck_turn": 30, "l_knee": 26,
            }),
            Key("backswing", 0.5, {
                "turn": -45, "spine_twist": -50, "spine_side": 5, "l_shoulder_flex": 77,
                "l_shoulder_abd": -55,
                "l_elbow": 0, "r_shoulder_flex": 62, "r_shoulder_abd": -22, "r_shoulder_rot": 68,
                "r_elbow": 98,
                "l_knee": 32, "neck_turn": 60, "wrist_flex": -30,
            }),
            Key("downswing", 0.24, {
                "turn": 30, "spine_twist": -25, "spine_side": -12, "l_shoulder_flex": 49,
                "l_shoulder_abd": -9,
                "l_elbow": 0, "r_shoulder_flex": 45, "r_shoulder_abd": -28, "r_elbow": 9, "r_knee": 30,
                "r_ankle": 18,
                "l_knee": 14, "neck_turn": 0,
            }),
            Key("follow-through", 0.3, {
                "turn": 70, "spine_twist": 15, "pitch": 15, "spine_flex": 0, "l_shoulder_flex": 69,
                "l_shoulder_abd": -25, "l_elbow": 1, "r_shoulder_flex": 77, "r_shoulder_abd": -19,
                "r_elbow": 0,
                "r_knee": 38, "r_ankle": 50, "l_knee": 8, "neck_turn": -40, "neck_flex": 5,
            }),
            Key("finish", 0.4, {
                "turn": 88, "spine_twist": 15, "pitch": 6, "spine_flex": -12, "l_shoulder_flex": 70,
                "l_shoulder_abd": 31, "l_shoulder_rot": -40, "l_elbow": 101, "r_shoulder_flex": 93,
                "r_shoulder_abd": -40, "r_shoulder_rot": -12, "r_elbow": 32, "r_knee": 45, "r_ankle": 65,
                "l_knee": 5,
                "neck_turn": -50, "neck_flex": 0,
            }),
        ),
        cyclic=False,
        reps=2,
    ),
    Action(
        "tennis_serve",
        ready={"turn": -30, "hip_abd": 8, "l_hip_flex": 10, "shoulder_flex": 20, "elbow": 20},
        keys=(
            Key("toss", 0.85, {
                "l_shoulder_flex": 165, "l_elbow": 5, "r_shoulder_abd": 95, "r_shoulder_flex": -10,
                "r_shoulder_rot": 60, "r_elbow": 100, "knee": 35, "hip_flex": 25, "pitch": 5,
                "spine_flex": -15,
                "spine_side": -15, "turn": -55, "neck_flex": -40,
            }),
            Key("swing", 0.25, {
                "l_shoulder_flex": 110, "r_shoulder_abd": 100, "r_shoulder_rot": 115, "r_elbow": 135,
                "knee": 12,
                "hip_flex": 8, "y": 0.04, "ankle": 25, "spine_flex": -20, "turn": -30, "neck_flex": -40,
            }),
            Key("swing", 0.12, {
                "r_shoulder_flex": 168, "r_shoulder_abd": 15, "r_elbow": 5, "y": 0.14, "knee": 0, "ankle": 40,
                "turn": 5, "spine_flex": 0, "spine_side": 10, "l_shoulder_flex": 60, "l_shoulder_abd": -20,
                "l_elbow": 70, "neck_flex": -35,
            }),
            Key("follow-through", 0.4, {
                "r_shoulder_flex": 40, "r_shoulder_abd": -40, "r_elbow": 20, "turn": 50, "spine_flex": 40,
                "pitch": 12, "l_hip_flex": 35, "l_knee": 30, "r_hip_flex": -30, "r_knee": 45,
                "l_shoulder_flex": 30,
                "l_elbow": 80, "neck_flex": 10,
            }),
            Key("finish", 0.45, {"turn": 30, "pitch": 8, "knee": 22, "hip_flex": 20, "shoulder_flex": 25,
            "elbow": 40}),
        ),
        cyclic=False,
        reps=2,
    ),
    Action(
        "tennis_forehand",
        ready={
            "pitch": 15, "knee": 25, "hip_flex": 32, "hip_abd": 12, "shoulder_flex": 32, "shoulder_abd": -8,
            "elbow": 80, "wrist_pron": 30,
        },
        keys=(
            Key("backswing", 0.5, {
                "turn": -70, "spine_twist": -20, "r_shoulder_abd": 55, "r_shoulder_flex": -25, "r_elbow": 60,
                "r_shoulder_rot": 25, "l_shoulder_flex": 90, "l_shoulder_abd": -25, "l_elbow": 20,
                "neck_turn": 60,
            }),
            Key("forward swing", 0.2, {
                "turn": -10, "r_shoulder_flex": 40, "r_shoulder_abd": 45, "r_elbow": 25,
                "l_shoulder_flex": 50,
                "l_shoulder_abd": 30, "l_elbow": 40, "neck_turn": 10,
            }),
            Key("follow-through", 0.3, {
                "turn": 40, "spine_twist": 25, "r_shoulder_flex": 125, "r_shoulder_abd": -30, "r_elbow": 120,
                "l_shoulder_flex": 20, "l_shoulder_abd": 20, "l_elbow": 90, "neck_turn": -20,
            }),
            Key("recovery", 0.6),
        ),
        reps=5,
    ),
    Action(
        "baseball_pitch",
        ready={"shoulder_flex": 40, "shoulder_abd": -12, "elbow": 118, "wrist_pron": 30},
        keys=(
            Key("wind-up", 0.75, {"l_hip_flex": 95, "l_knee": 95, "turn": -20, "r_knee": 12}),
            Key("stride", 0.45, {
                "l_hip_abd": 50, "l_hip_flex": 22, "l_knee": 25, "r_knee": 40, "r_hip_flex": 30,
                "r_hip_abd": 10,
                "r_shoulder_abd": 88, "r_shoulder_flex": -30, "r_elbow": 85, "r_shoulder_rot": 30,
                "l_shoulder_abd": 80, "l_shoulder_flex": 10, "l_elbow": 30, "turn": -30, "pitch": 8,
            }),
            Key("arm cocking", 0.16, {
                "l_hip_abd": 42, "l_hip_flex": 18, "l_knee": 40, "r_knee": 38, "r_hip_abd": 12, "turn": 25,
                "spine_twist": -35, "r_shoulder_abd": 95, "r_shoulder_rot": 115, "r_elbow": 92,
                "l_shoulder_abd": 60,
                "l_shoulder_flex": 30, "l_elbow": 60, "pitch": 10, "spine_side": -15,
            }),
            Key("acceleration", 0.08, {
                "l_hip_abd": 40, "l_hip_flex": 18, "l_knee": 35, "r_knee": 40, "r_hip_abd": 10, "turn": 60,
                "spine_twist": 20, "spine_flex": 25, "r_shoulder_abd": 95, "r_shoulder_rot": 10,
                "r_shoulder_flex": 35,
                "r_elbow": 20, "l_shoulder_abd": 30, "l_elbow": 95, "pitch": 15, "r_ankle": 30,
            }),
            Key("follow-through", 0.4, {
                "l_hip_abd": 30, "l_hip_flex": 30, "l_knee": 35, "turn": 85, "spine_twist": 10,
                "spine_flex": 50,
                "pitch": 22, "r_shoulder_flex": 55, "r_shoulder_abd": -25, "r_elbow": 35, "r_hip_flex": -45,
                "r_knee": 70, "r_hip_abd": 10, "l_shoulder_abd": 20, "l_elbow": 90,
            }),
        ),
        cyclic=False,
        reps=2,
    ),
    Action(
        "kick",
        ready={},
        keys=(
            Key("backswing", 0.4, {
                "r_hip_flex": -35, "r_knee": 95, "l_knee": 15, "l_shoulder_abd": 45, "r_shoulder_flex": 30,
                "pitch": -4,
            }),
            Key("strike", 0.14, {
                "r_hip_flex": 62, "r_knee": 12, "r_ankle": 30, "l_knee": 18, "pitch": -10,
                "l_shoulder_abd": 60,
                "l_shoulder_flex": -20, "r_shoulder_abd": 30,
            }),
            Key("follow-through", 0.3, {
                "r_hip_flex": 88, "r_knee": 22, "r_ankle": 25, "l_knee": 12, "pitch": -15,
                "l_shoulder_abd": 50,
                "r_shoulder_abd": 25, "r_shoulder_flex": -10,
            }),
            Key("recovery", 0.55),
        ),
        alternate=0.2,
        reps=4,
    ),
    Action(
        "jump",
        ready={},
        keys=(
            Key("countermovement", 0.55, {
                "pitch": 32, "hip_flex": 95, "knee": 100, "spine_flex": 12, "shoulder_flex": -45, "elbow": 12,
                "neck_flex": -20,
            }),
            Key("takeoff", 0.2, {"pitch": 4, "hip_flex": 2, "knee": 2, "ankle": 45, "shoulder_flex": 150}),
            Key("flight", 0.25, {"y": 0.32, "ankle": 30, "knee": 8, "hip_flex": 8, "shoulder_flex": 160}),
            Key("landing", 0.22, {"knee": 45, "hip_flex": 48, "pitch": 16, "shoulder_flex": 60}),
            Key("landing", 0.45),
        ),
        reps=4,
    ),
    Action(
        "pull_up",
        ready={
            "shoulder_abd": 160, "shoulder_flex": 12, "shoulder_rot": 88, "elbow": 6, "wrist_pron": 80,
            "knee": 35, "hip_flex": 15, "hip_rot": 2, "ankle": 20,
        },
        keys=(
            Key("pull", 1.0, {"shoulder_abd": 62, "shoulder_flex": 22, "elbow": 125, "neck_flex": -20,
            "knee": 45}),
            Key("lower", 1.1),
        ),
        support="hang",
        flat_feet=False,
        reps=6,
    ),
    Action(
        "throw",
        ready={},
        keys=(
            Key("wind-up", 0.55, {
                "turn": -45, "spine_twist": -20, "r_shoulder_abd": 90, "r_shoulder_rot": 60, "r_elbow": 90,
                "r_shoulder_flex": -30, "l_shoulder_flex": 70, "l_shoulder_abd": 20, "l_hip_flex": 30,
                "l_knee": 25,
                "r_knee": 15, "spine_side": -10,
            }),
            Key("throw", 0.14, {
                "turn": 30, "spine_twist": 20, "spine_flex": 20, "r_shoulder_flex": 70, "r_shoulder_abd": 75,
                "r_shoulder_rot": 0, "r_elbow": 15, "l_shoulder_flex": 20, "l_elbow": 90, "l_hip_flex": 25,
                "l_knee": 18, "r_ankle": 30,
            }),
            Key("follow-through", 0.4, {
                "turn": 50, "spine_twist": 15, "spine_flex": 40, "pitch": 10, "r_shoulder_flex": 40,
                "r_shoulder_abd": -30, "r_elbow": 30, "l_shoulder_flex": 10, "l_elbow": 90, "l_hip_flex": 28,
                "l_knee": 25, "r_ankle": 40, "r_knee": 25,
            }),
        ),
        cyclic=False,
        reps=2,
    ),
)
# fmt: on

ACTIONS: Mapping[str, Action] = MappingProxyType({a.name: a for a in ACTION_LIST})
ACTION_NAMES: tuple[str, ...] = tuple(a.name for a in ACTION_LIST)
