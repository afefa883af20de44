"""A learnable synthetic video task whose classes only time can tell apart.

No trained video checkpoint can be fetched on the machines fxaccel is built on, and int8 figures on
random weights say little (a random network's logits hardly depend on its input). So fxaccel trains
its own reference X3D on this task (``tools/train_zoo.py``) and judges int8 by accuracy on it.

Each clip shows one textured object over a textured background, with a static distractor object,
per-frame sensor noise and random colours, sizes, speeds and positions. The ten classes come in
five *time-mirrored pairs*; the two classes of a pair show the very same frames in two different
orders:

=====  ==========================  ===========================================================
pair   classes                     the two frame orders
=====  ==========================  ===========================================================
0      moves right / moves left    forward / reversed
1      moves down / moves up       forward / reversed
2      turns clockwise / anti-     forward / reversed
3      grows / shrinks             forward / reversed
4      blinks fast / blinks slow   on-off every frame / every two frames (same on/off frames)
=====  ==========================  ===========================================================

So a classifier that looks at frames one at a time and pools over time (any per-frame network,
whatever its capacity) gives both classes of a pair the same scores and cannot beat 50% top-1;
``tests/zoo/test_synthetic.py`` checks that the paired clips are frame permutations of each
other. Clips come normalised like Kinetics clips (mean 0.45, std 0.225), shaped
``(3, frames, crop, crop)``, deterministic from ``(split, seed, index)``; the ``"test"`` split draws
its generator seeds from a range the ``"train"`` split never reaches.

>>> data = SyntheticVideo("test", size=20, frames=4, crop=32)
>>> clip, label = data[13]
>>> tuple(clip.shape), label, CLASSES[label]
((3, 4, 32, 32), 3, 'moves up')
>>> bool(data[13][0].eq(clip).all())  # deterministic
True

Stability: public (``SyntheticVideo``, ``CLASSES``, ``clips``, ``example_input``, ``pair_of``).
"""
from __future__ import annotations

import math

import torch

__all__ = ["CLASSES", "CROP", "FRAMES", "SyntheticVideo", "clips", "example_input", "pair_of"]

CLASSES = (
    "moves right", "moves left", "moves down", "moves up",
    "turns clockwise", "turns anticlockwise", "grows", "shrinks",
    "blinks fast", "blinks slow",
)
FRAMES, CROP = 4, 64
"""The clip size the shipped checkpoint was trained at (X3D-XS frames; 64² rather than the design
160², because training X3D-XS at 160² on 2 CPU cores runs ~370 ms per clip; see docs/int8.md)."""

_MEAN, _STD = 0.45, 0.225
_SPLIT = 1 << 31
"""Generator seeds: train clips in [0, 2**31), test clips in [2**31, 2**32). torch's CPU generator
(mt19937) keeps only the low 32 bits of a seed, so the splits must differ there to share no clip."""


def pair_of(label: int) -> int:
    """The other class of ``label``'s time-mirrored pair (same frames, other order).

    >>> [pair_of(c) for c in range(4)]
    [1, 0, 3, 2]
    """
    return label ^ 1


class SyntheticVideo(torch.utils.data.Dataset):
    """``size`` labelled clips of the ``split`` ("train" or "test"); item ``i`` has label ``i % 10``.

    ``seed`` shifts the train split (another seed, other clips); items are made on the fly (about
    a millisecond each at 64², one thread), so a DataLoader with ``shuffle=True`` and a large
    ``size`` gives fresh clips for every step.
    """

    def __init__(self, split: str = "train", size: int = 10_000, frames: int = FRAMES, crop: int = CROP,
                 seed: int = 0):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if frames < 4:
            raise ValueError(f"frames must be at least 4 (blinking periods of 2 and 4 frames), got {frames}")
        if crop < 16:
            raise ValueError(f"crop must be at least 16 pixels, got {crop}")
        self.split, self.size, self.frames, self.crop, self.seed = split, size, frames, crop, seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} clips")
        label = index % len(CLASSES)
        gen = torch.Generator().manual_seed(_seed_of(self.split, self.seed, index))
        clip = render(label, self.frames, self.crop, gen)
        return (clip - _MEAN) / _STD, label


def _seed_of(split: str, seed: int, index: int) -> int:
    """The generator seed of item ``index``: test items ignore ``seed`` (one fixed test set)."""
    if split == "test":
        return _SPLIT + index % _SPLIT
    return (seed * 1_000_003 + index) % _SPLIT


def clips(split: str = "test", n: int = 8, batch: int = 8, frames: int = FRAMES, crop: int = CROP):
    """The first ``n`` clips of ``split`` as ``(clips, labels)`` batches: calibration / eval data.

    >>> [tuple(x.shape) for x, _ in clips(n=5, batch=2, crop=16)]
    [(2, 3, 4, 16, 16), (2, 3, 4, 16, 16), (1, 3, 4, 16, 16)]
    """
    data = SyntheticVideo(split, size=n, frames=frames, crop=crop)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=False)
    return list(loader)


def example_input(batch: int = 1, seed: int = 0, frames: int = FRAMES, crop: int = CROP) -> torch.Tensor:
    """Test clips ``seed .. seed + batch - 1`` stacked: a real example input of the trained model.

    >>> tuple(example_input(batch=2, crop=16).shape)
    (2, 3, 4, 16, 16)
    """
    data = SyntheticVideo("test", size=seed + batch, frames=frames, crop=crop)
    return torch.stack([data[seed + i][0] for i in range(batch)])


# --------------------------------------------------------------------------- rendering

def _uniform(gen, lo: float, hi: float, n: int = 1) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _background(gen, crop: int) -> torch.Tensor:
    """Low-frequency colour noise plus faint stripes: texture a net must learn to ignore."""
    cells = int(torch.randint(3, 9, (1,), generator=gen))
    coarse = torch.rand(1, 3, cells, cells, generator=gen)
    bg = torch.nn.functional.interpolate(coarse, size=(crop, crop), mode="bicubic", align_corners=False)[0]
    ys, xs = torch.meshgrid(torch.arange(crop, dtype=torch.float32), torch.arange(crop, dtype=torch.float32),
                            indexing="ij")
    angle, freq = float(_uniform(gen, 0, math.pi)), float(_uniform(gen, 0.05, 0.3))
    stripes = torch.cos(freq * (xs * math.cos(angle) + ys * math.sin(angle)))
    return (0.7 * bg + 0.15 * stripes * _uniform(gen, 0, 1)).clamp(0, 1)


def _shape_mask(kind: int, u: torch.Tensor, v: torch.Tensor, size: torch.Tensor, aspect: float) -> torch.Tensor:
    """Soft (anti-aliased) mask of a shape in object coordinates ``u, v`` (pixels): 0 disk,
    1 square, 2 bar (``aspect`` times longer than wide: its orientation shows rotation)."""
    if kind == 0:
        dist = torch.sqrt(u * u + v * v) - size
    elif kind == 1:
        dist = torch.maximum(u.abs(), v.abs()) - size
    else:
        dist = torch.maximum(u.abs() - size, v.abs() * aspect - size)
    return torch.sigmoid(-dist / 0.6)


def _object(gen, crop: int, cx, cy, angle, scale, kind: int, aspect: float = 1.0):
    """Per-frame mask and texture of one object: ``cx, cy, angle, scale`` are (T,) tensors, the
    texture is fixed to the object (it moves, turns and scales with it)."""
    ys, xs = torch.meshgrid(torch.arange(crop, dtype=torch.float32), torch.arange(crop, dtype=torch.float32),
                            indexing="ij")
    dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    s = scale[:, None, None]
    u, v = (dx * cos + dy * sin) / s, (-dx * sin + dy * cos) / s
    size = float(_uniform(gen, 0.09, 0.16)) * crop
    mask = _shape_mask(kind, u, v, torch.tensor(size), aspect)  # (T, H, W)
    freq, phase = float(_uniform(gen, 0.15, 0.6)), float(_uniform(gen, 0, 2 * math.pi))
    pattern = 0.5 + 0.5 * torch.cos(freq * u + phase) * torch.cos(freq * v * float(_uniform(gen, 0, 1)))
    # saturated complementary colours (each channel near 0 or near 1 in a, the other way in b):
    # the object's stripes have a contrast the smooth background lacks, whatever the draw
    far = 0.8 + 0.2 * torch.rand(3, generator=gen)
    a = torch.where(torch.rand(3, generator=gen) < 0.5, far, 1 - far)
    b = 1 - a
    texture = a[:, None, None, None] * pattern + b[:, None, None, None] * (1 - pattern)  # (3, T, H, W)
    return mask, texture, size


def _frames(pair: int, frames: int, crop: int, gen, on: list[float]) -> torch.Tensor:
    """The base frames (3, T, H, W) in [0, 1] of ``pair``, in its first class's order; ``on``: the
    slow blink pattern (pair 4)."""
    t = torch.arange(frames, dtype=torch.float32)
    centre = frames / 2 - 0.5
    one = torch.ones(frames)
    kind = int(torch.randint(0, 2, (1,), generator=gen))
    if pair in (0, 1):  # translation along x (pair 0) or y (pair 1), at a random speed
        speed = float(_uniform(gen, 0.05, 0.09)) * crop
        start = _uniform(gen, 0.3, 0.7, 2) * crop
        along = start[pair] + speed * (t - centre)
        across = start[1 - pair] * one
        cx, cy = (along, across) if pair == 0 else (across, along)
        mask, texture, _ = _object(gen, crop, cx, cy, float(_uniform(gen, 0, math.pi)) * one, one, kind)
    elif pair == 2:  # a bar turning clockwise (image y points down: growing angle turns clockwise)
        step = float(_uniform(gen, 0.3, 0.6))
        angle = float(_uniform(gen, 0, math.pi)) + step * t
        c = _uniform(gen, 0.3, 0.7, 2) * crop
        mask, texture, _ = _object(gen, crop, c[0] * one, c[1] * one, angle, one * float(_uniform(gen, 1.2, 1.8)),
                                   2, aspect=float(_uniform(gen, 2.5, 4.0)))
    elif pair == 3:  # growing
        rate = float(_uniform(gen, 1.2, 1.35))
        scale = rate ** (t - centre) * float(_uniform(gen, 0.8, 1.3))
        c = _uniform(gen, 0.35, 0.65, 2) * crop
        mask, texture, _ = _object(gen, crop, c[0] * one, c[1] * one, float(_uniform(gen, 0, math.pi)) * one,
                                   scale, kind)
    else:  # blinking: on frames show the object, off frames only the background
        c = _uniform(gen, 0.3, 0.7, 2) * crop
        mask, texture, _ = _object(gen, crop, c[0] * one, c[1] * one, float(_uniform(gen, 0, math.pi)) * one,
                                   one * float(_uniform(gen, 0.8, 1.3)), kind)
        mask = mask * torch.tensor(on)[:, None, None]
    # a static distractor, drawn under the moving object
    d = _uniform(gen, 0.15, 0.85, 2) * crop
    dmask, dtexture, _ = _object(gen, crop, d[0] * one, d[1] * one, float(_uniform(gen, 0, math.pi)) * one,
                                 one * float(_uniform(gen, 0.6, 1.0)), int(torch.randint(0, 2, (1,), generator=gen)))
    video = _background(gen, crop)[:, None].expand(3, frames, crop, crop)
    video = video * (1 - dmask) + dtexture * dmask
    video = video * (1 - mask) + texture * mask
    gain = _uniform(gen, 0.7, 1.2)  # brightness
    noise = torch.randn(video.shape, generator=gen) * float(_uniform(gen, 0.0, 0.08))
    return (video * gain + noise).clamp(0, 1)


def _blink_pattern(frames: int, period: int, phase: int) -> list[float]:
    """1.0 where the object shows: on for half the period, off for the other half."""
    half = period // 2
    return [1.0 if ((i + phase) // half) % 2 == 0 else 0.0 for i in range(frames)]


def _order(label: int, on: list[float]) -> list[int]:
    """Frame order of ``label`` over its pair's base frames ``on`` (a permutation of their indices)."""
    frames = len(on)
    if label == 8:  # blinks fast: the slow pattern's on / off frames, re-ordered to alternate every frame
        on_idx = [i for i, o in enumerate(on) if o]
        off_idx = [i for i, o in enumerate(on) if not o]
        fast = next(p for p in (_blink_pattern(frames, 2, 0), _blink_pattern(frames, 2, 1)) if sum(p) == len(on_idx))
        ons, offs = iter(on_idx), iter(off_idx)
        return [next(ons) if f else next(offs) for f in fast]
    if label % 2 == 1 and label != 9:  # the mirrored class of a motion pair: reversed
        return list(range(frames - 1, -1, -1))
    return list(range(frames))


def render(label: int, frames: int, crop: int, gen: torch.Generator) -> torch.Tensor:
    """One clip (3, frames, crop, crop) in [0, 1] of class ``label``, drawn from ``gen``.

    Both classes of a pair make the same random draws, so with the same generator state they show
    the same frames (``tests/zoo/test_synthetic.py``)."""
    on = _blink_pattern(frames, period=4, phase=int(torch.randint(0, 4, (1,), generator=gen)))
    video = _frames(label // 2, frames, crop, gen, on)
    return video[:, _order(label, on)]
