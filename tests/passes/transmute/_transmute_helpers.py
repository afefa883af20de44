"""What the transmute rule tests share: transmute a tiny model and prove it exact, forward and back."""
import fxaccel
from fxaccel.testing import assert_equivalent
from fxaccel.zoo import realistic_bn


def transmuted(model, x, *, bn: bool = False, **kw):
    """``fxaccel.transmute(model, x, **kw)``, checked equal to ``model`` (values and gradients, rtol
    1e-6: a block computes the very same ops); ``bn=True`` first gives the BNs realistic statistics."""
    model = realistic_bn(model, [x]) if bn else model.eval()
    gm = fxaccel.transmute(model, x, **kw)
    assert_equivalent(gm, model, x, rtol=1e-6, grads=True)
    return gm


def record(gm, rule: str):
    """The report record of pass ``rule``."""
    return fxaccel.report_of(gm).record(rule)
