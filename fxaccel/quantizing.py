"""``quantize``: int8 versions of deploy models, for TorchScript (eager mode) and ExecuTorch (pt2e).

Two flows, one per runtime family:

* ``qnnpack`` / ``x86`` (TorchScript, eager-mode ``torch.ao.quantization``): the model is re-traced
  down to ``torch.nn`` leaves, the ``quantize``-stage passes (``passes/quantize``) fuse
  conv-BN-ReLU, turn ``+`` / ``*`` / ``cat`` into ``FloatFunctional`` modules, respell swish, insert
  ``QuantStub`` / ``DeQuantStub`` where values change domain (ops without an int8 kernel and
  ``skip``-ped layers run in fp32 between them) and set the backend's qconfig; then prepare,
  calibrate, convert. ``torch.backends.quantized.engine`` is set to the backend: the int8 model
  needs that engine to run, so it stays set.
* ``xnnpack`` (ExecuTorch): ``torch.export`` + executorch's ``XNNPACKQuantizer`` (symmetric,
  per-channel weights) + torchao's ``prepare_pt2e`` / ``convert_pt2e``; the result is the
  converted GraphModule that ``fxaccel.lowering.executorch.to_pte`` lowers to a ``.pte``.
* ``litert`` (LiteRT): the same pt2e flow with litert-torch's ``PT2EQuantizer`` (the same
  symmetric scheme) and unfolded weight Q/DQ pairs, which ``fxaccel.lowering.litert.to_tflite``
  converts into TFLite int8 ops (``.tflite``; needs ``fxaccel[litert]``).

Both measure what int8 costs, on the calibration inputs, into the report (``report_of(q)``):
output SQNR vs the fp32 model, top-1 agreement, and per-layer SQNR (each int8 conv / linear on
the int8 model's own input to it, against the fp32 layer on that same input: the error *this*
layer adds, not the error it inherits). ``keep_float=k`` re-quantizes with the ``k`` worst layers
by that measure kept in fp32. With labelled ``eval_data`` the report also has top-1 of fp32 and
int8 and the SQNR on those clips, and ``keep_float="auto"`` finds the fewest worst layers to keep in
fp32 for a top-1 / SQNR budget: SQNR alone cannot judge a network whose logits barely depend on
its input (random weights), accuracy on labelled clips can (docs/int8.md).

Stability: public (``quantize``, ``BACKENDS``); the report's ``layers`` / ``extra`` keys may grow.
"""
from __future__ import annotations

import copy
import inspect
import sys
import time
from typing import Any, Iterable

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .blocks.layout import FoldTime, UnfoldTime
from .forms.one_clip import specialise_one_clip
from .inputs import (as_input_tuple, clone_inputs, describe, eval_mode, first_tensor, input_tensors, map_tensors,
                     output_leaves, run)
from .options import QuantizeOptions
from .pipeline import PassContext, run_stage
from .provenance import Provenance, mark, provenance_of
from .report import Opaque, Report, attach, report_or_none
from .targets import TARGETS, get_target
from .tracing import FailureTracer

BACKENDS = ("qnnpack", "x86", "xnnpack", "litert")
_EAGER = ("qnnpack", "x86")
USABLE_SQNR_DB = 12.0
"""Output SQNR (dB, int8 vs fp32) under which the CLI and the benchmarks call an int8 model broken
rather than time or write it. Not an accuracy target: on the random-weight zoo X3D every backend
lands at the same level (XS 14.5-15.1 dB, S 18.3-19.5 dB: the network amplifies any rounding
noise, tests/passes/quantize/test_quantize_zoo.py), while a wrong scale or layout gives < 5 dB.
Judge a trained model's int8 accuracy on real clips."""


def quantize(
    model: nn.Module,
    calibration_data: Iterable[Any],
    *,
    backend: str = "qnnpack",
    skip: str | Iterable[str] = (),
    keep_float: int | str = 0,
    eval_data: Iterable[Any] | None = None,
    max_top1_drop: float = 0.01,
    min_sqnr_db: float = 20.0,
    observer: str = "histogram",
    progress: bool | None = None,
) -> nn.Module:
    """Return an int8 copy of ``model`` (usually ``fxaccel.deploy``'s output), calibrated on ``calibration_data``.

    ``calibration_data``: an iterable of example inputs, each a tensor or a tuple whose first
    entries are the model's inputs (extra entries such as labels are ignored), so a ``DataLoader``
    works; a single tensor counts as one batch. It is read once and kept in memory (calibration,
    the fp32 reference and the SQNR measurement all need it). ``backend``: ``"qnnpack"`` (ARM /
    mobile TorchScript), ``"x86"`` (server TorchScript), ``"xnnpack"`` (ExecuTorch ``.pte``; needs
    ``pip install "fxaccel[executorch]"``) or ``"litert"`` (LiteRT ``.tflite``; needs ``fxaccel[litert]``). ``skip``: qualified names of layers (or of blocks: a
    prefix covers everything inside) that stay fp32. ``keep_float=k``: also keep the ``k`` layers
    with the worst per-layer SQNR in fp32. ``observer``: how activation ranges are calibrated,
    ``"histogram"`` (the range that minimises the quantization error of the observed histogram)
    or ``"minmax"`` (the observed extremes). ``progress``: show a progress bar while calibrating
    (default: only when stderr is a terminal). ``model`` is never modified.

    ``eval_data``: labelled batches ``(inputs..., labels)`` (a ``DataLoader`` of ``(clip, label)``
    works): the report then has top-1 of the fp32 and the int8 model on them (``fp32_top1``,
    ``int8_top1``) and the output SQNR on them (``eval_sqnr_db``). ``keep_float="auto"`` needs
    it: it keeps the fewest worst layers in fp32 (by per-layer SQNR) with which int8 top-1 is at
    most ``max_top1_drop`` below fp32 top-1 and ``eval_sqnr_db >= min_sqnr_db``.

    >>> import torch, fxaccel
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4)).eval()
    >>> clips = [torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    >>> q = fxaccel.quantize(model, clips, backend="qnnpack")
    >>> q(clips[0]).shape
    torch.Size([2, 4])
    >>> fxaccel.report_of(q).extra["output_sqnr_db"] > 20
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"quantize takes an nn.Module, got {type(model).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)} "
                         "(qnnpack/x86: TorchScript, xnnpack: ExecuTorch .pte, litert: LiteRT .tflite)")
    auto = keep_float == "auto"
    if not auto and (isinstance(keep_float, bool) or not isinstance(keep_float, int) or keep_float < 0):
        raise ValueError(f"keep_float must be a non-negative int (how many layers to keep in fp32) or 'auto', "
                         f"got {keep_float!r}")
    if observer not in OBSERVERS:
        raise ValueError(f"unknown observer {observer!r}; choose one of {', '.join(OBSERVERS)}")
    if auto and eval_data is None:
        raise ValueError("keep_float='auto' needs eval_data (labelled batches (clips, labels)): it keeps layers "
                         "in fp32 until int8 top-1 on them is within max_top1_drop of fp32")
    skips = _skip_names(skip)
    n_inputs = _input_count(model)
    items = _collect(calibration_data, n_inputs)
    labelled = _collect_labelled(eval_data, n_inputs) if eval_data is not None else None
    start = time.perf_counter()
    refs = [run(model, it, what=f"{type(model).__name__} on calibration item {i}") for i, it in enumerate(items)]
    evaluation = _Evaluation(model, labelled) if labelled else None
    previous, made_by = report_or_none(model), provenance_of(model)
    target = made_by.target if made_by is not None and made_by.target else next(
        name for name, t in TARGETS.items() if backend in t.quant_backends)
    show = progress if progress is not None else sys.stderr.isatty()

    flow = _Eager(backend, observer) if backend in _EAGER else _Pt2e(observer, backend)
    qmodel, report, layers = flow.quantize(model, items, skips, target, show)
    if auto:
        qmodel, report, layers, searched = _auto_keep_float(
            flow, model, items, skips, target, show, (qmodel, report, layers), evaluation, max_top1_drop, min_sqnr_db)
        skips.update(searched.pop("skips"))
    elif keep_float:
        worst = _worst(layers, keep_float)
        if worst:
            skips.update(_worst_skips(worst, keep_float))
            qmodel, report, layers = flow.quantize(model, items, skips, target, show)
    for lay in layers:
        if not lay["int8"]:
            lay["reason"] = next((r for s, r in skips.items() if lay["name"] == s or lay["name"].startswith(s + ".")),
                                 lay.get("reason"))

    with torch.no_grad():  # not inputs.run: exported (pt2e) modules refuse .eval()
        outs = [qmodel(*clone_inputs(it)) for it in items]
    report.previous = previous
    report.layers = layers
    report.extra.update({
        "backend": backend,
        "observer": observer,
        "calibration_items": len(items),
        "output_sqnr_db": round(_output_sqnr(refs, outs), 2),
        "top1_agreement": round(_top1(refs, outs), 4),
        "int8_layers": sum(lay["int8"] for lay in layers),
        "kept_float": [lay["name"] for lay in layers if not lay["int8"]],
    })
    if evaluation is not None:
        report.extra.update(evaluation.measure(qmodel))
    if auto:
        report.extra["auto_keep_float"] = searched
    report.extra["seconds"] = round(time.perf_counter() - start, 3)
    if backend in _EAGER:
        report.extra["engine"] = backend
    attach(qmodel, report)
    mark(qmodel, Provenance("quantize", target, backend, report.extra["output_sqnr_db"]))
    return qmodel


OBSERVERS = ("histogram", "minmax")


def _worst(layers: list[dict], k: int) -> list[dict]:
    return sorted((lay for lay in layers if lay["int8"]), key=lambda lay: lay["sqnr_db"])[:k]


def _worst_skips(worst: list[dict], k: int, why: str = "keep_float") -> dict[str, str]:
    return {lay["name"]: f"{why}: per-layer SQNR {lay['sqnr_db']:.1f} dB, among the {k} worst" for lay in worst}


def _auto_keep_float(flow, model, items, skips, target, show, first, evaluation, max_drop, min_db):
    """The fewest worst layers (by per-layer SQNR of the all-int8 model) to keep in fp32 so that
    top-1 drops by at most ``max_drop`` and the eval SQNR reaches ``min_db``: k = 0, 1, 2, 4, ...
    until the budget is met, then bisection between the last miss and the first hit (the search
    assumes more fp32 layers never hurt; each try is a full calibration)."""
    ranked = _worst(first[2], len(first[2]))
    tried: dict[int, tuple] = {0: first}
    log: list[dict] = []

    def attempt(k: int):
        if k not in tried:
            tried[k] = flow.quantize(model, items, {**skips, **_worst_skips(ranked[:k], k, "keep_float='auto'")},
                                     target, show)
        m = evaluation.measure(tried[k][0])
        ok = m["int8_top1"] >= m["fp32_top1"] - max_drop - 1e-9 and m["eval_sqnr_db"] >= min_db
        log.append({"kept": k, "int8_top1": m["int8_top1"], "eval_sqnr_db": m["eval_sqnr_db"], "meets": ok})
        return ok

    lo, hi = -1, None  # lo: largest k known to miss; hi: smallest k known to meet
    k = 0
    while k <= len(ranked):
        if attempt(k):
            hi = k
            break
        lo, k = k, (1 if k == 0 else 2 * k)
    if hi is None:
        hi = len(ranked)
        if not attempt(hi):
            raise ValueError(f"keep_float='auto': even with all {hi} layers in fp32 the budget (top-1 drop <= "
                             f"{max_drop}, SQNR >= {min_db} dB) is not met; the rest of the int8 path (stubs, "
                             "activations without a layer) costs too much; relax max_top1_drop / min_sqnr_db")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if attempt(mid):
            hi = mid
        else:
            lo = mid
    chosen = _worst_skips(ranked[:hi], hi, "keep_float='auto'")
    return (*tried[hi], {"kept": hi, "max_top1_drop": max_drop, "min_sqnr_db": min_db, "tries": log,
                         "skips": chosen})


# --------------------------------------------------------------------------- inputs

def _skip_names(skip) -> dict[str, str]:
    names = [skip] if isinstance(skip, str) else list(skip)
    bad = [s for s in names if not isinstance(s, str) or not s]
    if bad:
        raise TypeError(f"skip must be layer names (qualified module names such as 'blocks.3.conv'), got {bad!r}")
    return {s: "skip=" for s in names}


def _input_count(model: nn.Module) -> int | None:
    """How many positional inputs ``model`` takes (``None``: unknown, e.g. ``*args``)."""
    if isinstance(model, fx.GraphModule):
        return sum(1 for n in model.graph.nodes if n.op == "placeholder")
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _collect(data, n_inputs: int | None) -> list[tuple]:
    """The calibration items as tuples of tensors, with errors that say the fix."""
    if data is None:
        raise ValueError("calibration_data is required: pass an iterable of example inputs (a list of "
                         "clips shaped like the real input, or a DataLoader), e.g. "
                         "[fxaccel.zoo.example_input('XS', seed=i) for i in range(4)]")
    if isinstance(data, torch.Tensor):
        data = [data]
    try:
        iterator = iter(data)
    except TypeError:
        raise TypeError(f"calibration_data must be an iterable of example inputs, got {type(data).__name__}") from None
    items = []
    for i, item in enumerate(iterator):
        if isinstance(item, torch.Tensor):
            item = (item,)
        elif isinstance(item, (tuple, list)):
            item = tuple(item[:n_inputs] if n_inputs else item)
        try:  # each item is a call: positional arguments, each a tensor or a list/tuple/dict of them
            item = as_input_tuple(item, what=f"calibration item {i}")
        except (TypeError, ValueError) as err:
            raise TypeError(f"calibration item {i} must be a tensor or a tuple of the model's inputs: {err}") from None
        items.append(item)
    if not items:
        raise ValueError("calibration_data is empty (an exhausted iterator or an empty DataLoader?): "
                         "quantization needs a few representative inputs to measure activation ranges")
    first = [tuple(t.shape[1:]) for t in input_tensors(items[0])]
    for i, item in enumerate(items[1:], 1):
        shapes = [tuple(t.shape[1:]) for t in input_tensors(item)]
        if shapes != first:
            raise ValueError(
                f"calibration item {i} has shape {describe(item)} but item 0 has {describe(items[0])}: every "
                "item must have the input shape the model was deployed for (only the batch size may differ)")
    return items


def _collect_labelled(data, n_inputs: int | None) -> list[tuple[tuple, torch.Tensor]]:
    """``eval_data`` as ``(inputs, labels)`` pairs: each item is ``(inputs..., labels)`` with integer
    class labels, one per sample (a DataLoader of ``(clip, label)`` gives exactly that)."""
    if isinstance(data, torch.Tensor):
        raise TypeError("eval_data must be labelled batches (clips, labels), e.g. a DataLoader of (clip, label) "
                        "or fxaccel.zoo.synthetic.clips('test'); got one tensor without labels")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise TypeError(f"eval_data item {i} must be (inputs..., labels), got {type(item).__name__}")
        inputs, labels = tuple(item[:n_inputs] if n_inputs else item[:-1]), item[n_inputs or len(item) - 1]
        labels = torch.as_tensor(labels)
        batch = first_tensor(inputs).shape[0]
        if labels.is_floating_point() or labels.dim() != 1 or labels.shape[0] != batch:
            raise TypeError(f"eval_data item {i}: labels must be one integer class per sample, shaped "
                            f"({batch},), got {labels.dtype} {tuple(labels.shape)}")
        out.append((inputs, labels))
    if not out:
        raise ValueError("eval_data is empty: give labelled batches (clips, labels) to measure top-1 on")
    return out


class _Evaluation:
    """Top-1 and output SQNR on labelled data; the fp32 figures are computed once, and each int8
    model is measured once (``keep_float="auto"`` and the final report read the same figures)."""

    def __init__(self, model: nn.Module, labelled: list):
        self.labelled = labelled
        self.refs = [run(model, inputs, what=f"{type(model).__name__} on eval_data") for inputs, _ in labelled]
        self.fp32_top1 = self._accuracy(self.refs)
        self._measured: dict[int, tuple[Any, dict[str, Any]]] = {}  # id -> (model, figures): the model pins the id

    def _accuracy(self, outs) -> float:
        right = sum((_tensors(o)[0].argmax(-1) == labels).sum().item() for o, (_, labels) in zip(outs, self.labelled))
        return right / sum(len(labels) for _, labels in self.labelled)

    def measure(self, qmodel) -> dict[str, Any]:
        if id(qmodel) not in self._measured:
            outs = [_batched(qmodel, inputs) for inputs, _ in self.labelled]
            self._measured[id(qmodel)] = (qmodel, {
                "eval_clips": sum(len(labels) for _, labels in self.labelled),
                "fp32_top1": round(self.fp32_top1, 4), "int8_top1": round(self._accuracy(outs), 4),
                "eval_sqnr_db": round(_output_sqnr(self.refs, outs), 2)})
        return dict(self._measured[id(qmodel)][1])


def _batched(model, inputs: tuple):
    """``model`` on ``inputs``; a pt2e model exported for one batch size runs the batch in chunks of it."""
    fixed = getattr(model, "_fxaccel_batch", None)
    with torch.no_grad():
        n = first_tensor(inputs).shape[0]
        if fixed is None or n == fixed:
            return model(*clone_inputs(inputs))
        if n % fixed:
            raise ValueError(f"eval_data batch of {n} does not split into the exported batch size {fixed} "
                             "(pt2e backends export one fixed shape): use a batch size that is a multiple of it")
        return torch.cat([model(*map_tensors(lambda t: t[i:i + fixed].clone(), inputs)) for i in range(0, n, fixed)])


def _progress(items: list, description: str, show: bool):
    if not show:
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, description=description, console=Console(stderr=True), transient=True)


# --------------------------------------------------------------------------- measurements

def _tensors(out) -> list[torch.Tensor]:
    """Every tensor of an output, whatever its structure (``ModelOutput`` included)."""
    return [t for _, t in output_leaves(out)]


class _Power:
    """Signal and noise energy summed over calls: SQNR of all calibration data together."""

    def __init__(self):
        self.signal = 0.0
        self.noise = 0.0

    def add(self, ref: torch.Tensor, got: torch.Tensor) -> None:
        ref, got = ref.detach().double(), got.detach().double()
        self.signal += ref.pow(2).sum().item()
        self.noise += (ref - got).pow(2).sum().item()

    def db(self) -> float:
        if self.noise == 0.0:
            return float("inf")
        if self.signal == 0.0:
            return float("-inf")
        return 10.0 * torch.log10(torch.tensor(self.signal / self.noise, dtype=torch.float64)).item()


def _output_sqnr(refs: list, outs: list) -> float:
    power = _Power()
    for ref, out in zip(refs, outs):
        for r, o in zip(_tensors(ref), _tensors(out)):
            power.add(r, o.dequantize() if o.is_quantized else o)
    return power.db()


def _top1(refs: list, outs: list) -> float:
    """Share of samples whose arg-max over the last dim of the first output agrees with fp32."""
    same = total = 0
    for ref, out in zip(refs, outs):
        r, o = _tensors(ref)[0], _tensors(out)[0]
        r, o = r.reshape(-1, r.shape[-1]), o.reshape(-1, o.shape[-1])
        same += (r.argmax(-1) == o.argmax(-1)).sum().item()
        total += r.shape[0]
    return same / max(total, 1)


def _is_layer(module: nn.Module) -> bool:
    """A weighted layer (conv, linear, or a fused module around one): what per-layer SQNR is about."""
    from torch.ao.nn.intrinsic import _FusedModule

    if isinstance(module, _FusedModule):
        module = module[0]
    return isinstance(module, (nn.modules.conv._ConvNd, nn.Linear))


def _layer_entry(name: str, module: nn.Module, int8: bool, db: float | None) -> dict[str, Any]:
    return {"name": name, "type": type(module).__name__, "int8": int8,
            "sqnr_db": None if db is None else round(db, 2), "reason": None}


def _calibrate(model: nn.Module, items: list, show: bool, description: str) -> None:
    with torch.no_grad():
        for item in _progress(items, description, show):
            model(*clone_inputs(item))


# --------------------------------------------------------------------------- eager flow (qnnpack, x86)

class _FlatTracer(FailureTracer):
    """Trace through every non-``torch.nn`` module (deploy forms included), so their functional
    ops become nodes the passes can convert; FoldTime / UnfoldTime and modules that fail to
    trace stay leaves (the latter run in fp32)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (FoldTime, UnfoldTime)) or super().is_leaf_module(m, qualname)


def _trace_flat(model: nn.Module, opaque: list[Opaque]) -> fx.GraphModule:
    leaves: set[str] = set()
    while True:
        tracer = _FlatTracer(leaves)
        try:
            graph = tracer.trace(model)
        except Exception as err:
            if not tracer.failed or tracer.failed in leaves:
                raise TypeError(f"quantize cannot trace {type(model).__name__} ({type(err).__name__}: {err}); "
                                "run fxaccel.deploy (or fxaccel.transmute) on it first") from err
            leaves.add(tracer.failed)
            opaque.append(Opaque(tracer.failed, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"))
            continue
        return fx.GraphModule(model, graph, type(model).__name__)


def _eager_qconfig(backend: str, observer: str = "histogram"):
    """The backend's qconfig: per-channel weights for qnnpack too (measured on X3D: BN-folded
    depthwise weights differ by orders of magnitude per channel, so per-tensor weights lose them);
    activations by ``observer``. x86 keeps ``reduce_range`` (7-bit activations: fbgemm's
    int16 accumulation can overflow with 8)."""
    from torch.ao.quantization import QConfig
    from torch.ao.quantization.observer import (HistogramObserver, MinMaxObserver,
                                               default_per_channel_weight_observer)

    act = HistogramObserver if observer == "histogram" else MinMaxObserver
    return QConfig(activation=act.with_args(reduce_range=backend == "x86"), weight=default_per_channel_weight_observer)


class _Eager:
    def __init__(self, backend: str, observer: str = "histogram"):
        self.backend, self.observer = backend, observer

    def build(self, model: nn.Module, items: list, skips: dict, target: str) -> tuple[fx.GraphModule, Report]:
        """The float GraphModule after the quantize-stage passes (stubs placed, qconfig set)."""
        report = Report("quantize", target)
        work = copy.deepcopy(model).eval()
        gm = _trace_flat(work, report.opaque)
        with torch.no_grad(), eval_mode(gm):
            ShapeProp(gm).propagate(*clone_inputs(items[0]))
        ctx = PassContext("quantize", get_target(target), items[0], report, options=QuantizeOptions(
            "eager", qconfig=_eager_qconfig(self.backend, self.observer), skip=dict(skips)))
        gm = run_stage("quantize", gm, ctx)
        return gm.eval(), report

    def quantize(self, model, items, skips, target, show):
        from torch.ao.quantization import convert, prepare

        torch.backends.quantized.engine = self.backend
        float_gm, report = self.build(model, items, skips, target)
        prepared = prepare(copy.deepcopy(float_gm), inplace=True)
        _calibrate(prepared, items, show, f"calibrating ({self.backend})")
        qgm = convert(prepared, inplace=True)
        return qgm, report, self.layers(float_gm, qgm, items)

    @staticmethod
    def layers(float_gm: fx.GraphModule, qgm: fx.GraphModule, items: list) -> list[dict]:
        """Per-layer SQNR: each int8 layer's output vs its fp32 layer run on the same (int8) input."""
        found: dict[str, tuple[nn.Module, bool]] = {}
        for node in float_gm.graph.nodes:
            if node.op == "call_module" and node.target not in found:
                mod = float_gm.get_submodule(node.target)
                if _is_layer(mod):
                    found[node.target] = (mod, node.meta.get("fxaccel_quant") == "int8")
        power = {name: _Power() for name, (_, int8) in found.items() if int8}

        def hook(name):
            def fn(_mod, args, out):
                x = args[0].dequantize() if args[0].is_quantized else args[0]
                power[name].add(found[name][0](x), out.dequantize() if out.is_quantized else out)
            return fn

        handles = [qgm.get_submodule(name).register_forward_hook(hook(name)) for name in power]
        try:
            with torch.no_grad():
                for item in items:
                    qgm(*clone_inputs(item))
        finally:
            for h in handles:
                h.remove()
        return [_layer_entry(name, mod, int8, power[name].db() if int8 else None)
                for name, (mod, int8) in found.items()]


# --------------------------------------------------------------------------- pt2e flow (xnnpack, litert)

def _pt2e_api(backend: str = "xnnpack"):
    """The pt2e quantizer class and its symmetric config for ``backend``, with torchao's prepare/convert.

    ``litert`` uses litert-torch's own ``PT2EQuantizer`` (the same symmetric int8 scheme as
    XNNPACK's): its converter only turns the Q/DQ pairs into TFLite int8 ops when told which
    quantizer annotated them (see ``fxaccel.lowering.litert``).
    """
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        if backend == "litert":
            from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer as Quantizer
            from litert_torch.quantize.pt2e_quantizer import get_symmetric_quantization_config
        else:  # XNNPACK's quantizer, zero pads sharing their input's scale (fxaccel.lowering.xnnpack_int8)
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_symmetric_quantization_config

            from .lowering.xnnpack_int8 import quantizer_class
            Quantizer = quantizer_class()
    except ImportError as err:
        from .errors import MissingDependency

        if backend == "litert":
            raise MissingDependency("litert-torch", "litert", err) from err
        raise MissingDependency("executorch", "executorch", err) from err
    return Quantizer, get_symmetric_quantization_config, prepare_pt2e, convert_pt2e


def _pt2e_config(sym_config, observer: str):
    """executorch's symmetric per-channel config; its activations use a HistogramObserver, swapped
    for a MinMaxObserver (same eps) with ``observer="minmax"``."""
    import dataclasses

    from torchao.quantization.pt2e import MinMaxObserver

    config = sym_config(is_per_channel=True)
    if observer == "histogram":
        return config
    act = dataclasses.replace(config.input_activation,
                              observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
    return dataclasses.replace(config, input_activation=act, output_activation=act)


def _module_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return str(list(stack.values())[-1][0]) if stack else ""


def _in_skipped(node: fx.Node, skips: dict) -> bool:
    stack = node.meta.get("nn_module_stack") or {}
    paths = [str(v[0]) for v in stack.values()]
    return any(p == s or p.startswith(s + ".") for p in paths for s in skips)


_LAYER_OPS = ("conv1d", "conv2d", "conv3d", "convolution", "linear")
_ACT_OPS = ("relu", "relu_", "hardtanh", "hardtanh_", "clamp")


def _op_name(node: fx.Node) -> str:
    return getattr(node.target, "__name__", str(node.target)).split(".")[0]


_PT2E_QUANTIZERS = {"xnnpack": "executorch XNNPACKQuantizer", "litert": "litert-torch PT2EQuantizer"}


class _Pt2e:
    def __init__(self, observer: str = "histogram", backend: str = "xnnpack"):
        self.observer, self.backend = observer, backend

    def quantize(self, model, items, skips, target, show):
        Quantizer, sym_config, prepare_pt2e, convert_pt2e = _pt2e_api(self.backend)
        report = Report("quantize", target)
        work = copy.deepcopy(model).eval()
        if len({describe(it) for it in items}) != 1:
            raise ValueError(f"backend {self.backend!r} exports for one fixed input shape: give every calibration "
                             f"item the same shape, batch included (got {sorted({describe(it) for it in items})})")
        # a one-clip program sums temporal taps along the batch dim (fxaccel.forms.one_clip)
        swapped, _ = specialise_one_clip(work, items[0])
        with torch.no_grad():
            exported = torch.export.export(work, clone_inputs(items[0])).module()
        quantizer = Quantizer().set_global(_pt2e_config(sym_config, self.observer))
        if self.backend == "litert" and skips:
            raise ValueError(
                f"backend 'litert' cannot keep layers in fp32 ({', '.join(skips)}): litert-torch 0.10's quantizer "
                "has no per-layer opt-out. Quantize every layer (no skip=/keep_float=), or use backend='xnnpack' "
                "and a .pte")
        if skips:
            quantizer.set_filter_function(lambda n: not _in_skipped(n, skips))
        rec = report.record(f"{self.backend}_quantizer")
        rec.stage = "quantize"
        rec.note(f"{_PT2E_QUANTIZERS[self.backend]}, symmetric int8, per-channel weights; torchao "
                 "prepare_pt2e/convert_pt2e")
        if swapped:
            rec.note(f"{len(swapped)} temporal tap form(s) specialised to one clip (no 3-D views)")
        for s in skips:
            rec.skip(s, f"kept in fp32: {skips[s]}")
        prepared = prepare_pt2e(exported, quantizer)
        _calibrate(prepared, items, show, f"calibrating ({self.backend})")
        # LiteRT's converter reads weight Q/DQ pairs; folded int8 weight constants it rejects
        converted = convert_pt2e(prepared, fold_quantize=self.backend != "litert")
        converted._fxaccel_batch = first_tensor(items[0]).shape[0]  # exported for this batch size only
        return converted, report, self.layers(work, converted, items)

    @staticmethod
    def layers(float_model: nn.Module, converted: fx.GraphModule, items: list) -> list[dict]:
        """Per-layer SQNR on the converted graph: a conv/linear node's (dequantized) input goes
        through the fp32 layer (and the activations that follow it); the reference is compared with
        the int8 graph's requantized output. Layers without an output quantize stay fp32."""
        plans: dict[fx.Node, tuple[str, fx.Node, list[fx.Node]]] = {}  # end node -> (layer, layer node, acts)
        names: dict[str, bool] = {}
        for node in converted.graph.nodes:
            if node.op != "call_function" or _op_name(node) not in _LAYER_OPS:
                continue
            name = _module_path(node)
            try:
                mod = float_model.get_submodule(name)
            except AttributeError:
                continue
            if not _is_layer(mod) or name in names:
                continue
            acts, cur = [], node
            while len(cur.users) == 1 and _op_name(next(iter(cur.users))) in _ACT_OPS:
                cur = next(iter(cur.users))
                acts.append(cur)
            q = next((u for u in cur.users if "quantize_per_tensor" in _op_name(u)
                      and not _op_name(u).startswith("dequantize")), None)
            dq = next((u for u in q.users if _op_name(u).startswith("dequantize")), None) if q else None
            names[name] = dq is not None
            if dq is not None:
                plans[dq] = (name, node, acts)
        power = {name: _Power() for name, int8 in names.items() if int8}
        pending: dict[fx.Node, torch.Tensor] = {}
        layer_nodes = {layer: end for end, (_, layer, _) in plans.items()}

        class _Probe(fx.Interpreter):
            def run_node(self, n):
                if n in layer_nodes:  # keep the layer's input: the interpreter frees it after use
                    pending[n] = self.env[n.args[0]]
                out = super().run_node(n)
                if n in plans:
                    name, layer, acts = plans[n]
                    ref = float_model.get_submodule(name)(pending.pop(layer))
                    for act in acts:
                        ref = act.target(ref, *act.args[1:], **act.kwargs)
                    power[name].add(ref, out)
                return out

        with torch.no_grad():
            for item in items:
                _Probe(converted).run(*clone_inputs(item))
        return [_layer_entry(name, float_model.get_submodule(name), int8, power[name].db() if int8 else None)
                for name, int8 in names.items()]
