"""fxaccel's artifacts run on ARM64 (the phone ISA) as they do on x86.

Each kind is written from a small conv model and run by the real aarch64 runtimes under
qemu-aarch64 (the shared/arm harness, through tools/bench_arm.py): fp32 kinds must match the x86
eager output (rel err <= 1e-4), int8 kinds the same artifact run on x86 and fp16 kinds the fp32
x86 output (SQNR lower bound >= 25 dB: ARM computes fp16 natively, x86 emulates it). About 20-40 s per kind, mostly torch's import under emulation; skipped when the harness
is not set up (``bash ../shared/arm/setup.sh``). Run with ``python -m pytest -m arm tests/arm``.
"""
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import bench_arm  # noqa: E402

pytestmark = [pytest.mark.arm, pytest.mark.slow,
              pytest.mark.skipif(bench_arm.harness_problem() is not None, reason=str(bench_arm.harness_problem()))]


class SmallConv3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, (3, 3, 3))
        self.bn = nn.BatchNorm3d(8)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1))


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    torch.manual_seed(0)
    model = SmallConv3d().eval()
    model.bn.running_mean.uniform_(-0.5, 0.5)  # non-trivial BN statistics: folding must be right
    model.bn.running_var.uniform_(0.5, 2.0)
    return model, torch.randn(1, 3, 4, 32, 32), tmp_path_factory.mktemp("arm")


@pytest.mark.parametrize("kind", ["ts", "pte", "pte_int8", "pte_fp16", "tflite"])
def test_artifact_runs_on_aarch64_as_on_x86(case, kind):
    model, x, work = case
    (row,) = bench_arm.measure("small", model, x, [kind], ["cortex-a76"], work, n=1)
    assert "skip" not in row, row.get("skip")  # an export that raises fails here
    assert "error" not in row["run"], row["run"].get("error")
    assert row["run"]["insns_per_inference"] > 0
    rel = row["run"]["guest"]["rel_err"]
    assert row["match"], f"{kind}: ARM vs x86 rel err {rel:.2e}, SQNR >= {row['arm_db']:.1f} dB"
