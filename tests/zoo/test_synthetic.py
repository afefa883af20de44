"""The synthetic video task: deterministic, split-disjoint, and unsolvable frame by frame.

The last point is what makes the task a test of *spatio-temporal* features: the two classes of a
pair show the same frames in another order, so any classifier that scores frames one at a time and
pools over time gives both the same scores (at most 50% top-1 within a pair, whatever its capacity).
"""
import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings

from fxaccel.zoo import synthetic
from fxaccel.zoo.synthetic import CLASSES, SyntheticVideo, pair_of, render
from fxaccel.zoo.x3d import x3d


def _pair(label: int, seed: int, frames: int = 4, crop: int = 32):
    """Both classes of ``label``'s pair rendered from the same generator state."""
    a = render(label, frames, crop, torch.Generator().manual_seed(seed))
    b = render(pair_of(label), frames, crop, torch.Generator().manual_seed(seed))
    return a, b


def _as_permutation(a: torch.Tensor, b: torch.Tensor) -> list[int]:
    """The frame order ``p`` with ``b[:, t] == a[:, p[t]]`` (asserts there is one)."""
    order = []
    for t in range(b.shape[1]):
        same = [s for s in range(a.shape[1]) if torch.equal(b[:, t], a[:, s]) and s not in order]
        assert same, f"frame {t} of the paired clip is not a frame of the clip"
        order.append(same[0])
    return order


@settings(max_examples=20)
@given(label=st.integers(0, len(CLASSES) - 1), seed=st.integers(0, 2**31), frames=st.sampled_from([4, 8, 13]))
def test_paired_classes_show_the_same_frames_in_another_order(label, seed, frames):
    a, b = _pair(label, seed, frames)
    order = _as_permutation(a, b)
    assert sorted(order) == list(range(frames))
    assert order != list(range(frames)), "a pair that shows the same frames in the same order is one class"


def test_a_per_frame_network_of_the_same_capacity_gives_a_pair_the_same_scores():
    """X3D-XS run on one frame at a time (its temporal kernels then only see that frame) and
    averaged over time: the best any per-frame classifier can do is a coin toss within a pair."""
    torch.manual_seed(0)
    model = x3d("XS", num_classes=len(CLASSES))

    def per_frame(clip):
        with torch.no_grad():
            return torch.stack([model(clip[:, :, t:t + 1]) for t in range(clip.shape[2])]).mean(0)

    for label in (0, 4, 6, 8):
        a, b = _pair(label, seed=label + 7, crop=64)
        sa, sb = per_frame(a[None]), per_frame(b[None])
        torch.testing.assert_close(sa, sb, rtol=1e-5, atol=1e-5)  # float sums in another order
        assert not torch.allclose(model(a[None]), model(b[None]), rtol=1e-3, atol=1e-3), \
            "the full X3D (temporal kernels) must be able to tell the pair apart"


def test_items_are_deterministic_labelled_and_normalised():
    data = SyntheticVideo("train", size=30, crop=32)
    clip, label = data[17]
    again, _ = SyntheticVideo("train", size=30, crop=32)[17]
    assert torch.equal(clip, again) and label == 7 and clip.shape == (3, 4, 32, 32)
    stack = torch.stack([data[i][0] for i in range(10)])
    # Kinetics-like normalisation (unnormalised [0, 1] pixels would have std ~0.25)
    assert abs(stack.mean().item()) < 0.6 and 0.5 < stack.std().item() < 1.6
    assert not torch.equal(SyntheticVideo("train", size=30, crop=32, seed=1)[17][0], clip)


def test_train_and_test_splits_share_no_clip():
    train = SyntheticVideo("train", size=40, crop=16)
    test = SyntheticVideo("test", size=40, crop=16)
    train_clips = [train[i][0] for i in range(40)]
    assert not any(torch.equal(test[i][0], c) for i in range(40) for c in train_clips)


def test_bad_arguments_say_what_to_change():
    with pytest.raises(ValueError, match="split"):
        SyntheticVideo("val")
    with pytest.raises(ValueError, match="frames"):
        SyntheticVideo(frames=2)
    with pytest.raises(IndexError, match="out of range"):
        SyntheticVideo(size=3)[3]


def test_clips_batches_a_split_for_calibration_and_evaluation():
    batches = synthetic.clips("test", n=5, batch=2, crop=16)
    assert [tuple(x.shape) for x, _ in batches] == [(2, 3, 4, 16, 16)] * 2 + [(1, 3, 4, 16, 16)]
    assert [y.tolist() for _, y in batches] == [[0, 1], [2, 3], [4]]
