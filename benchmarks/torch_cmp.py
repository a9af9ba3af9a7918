"""Section torch: GD step and HVP vs a PyTorch autograd implementation of the same network/loss.

torch is optional (``pip install -e .[bench]``) and imported lazily. Its network is
f = softplus(X W^T) a + c with the squared loss R = mean((f - y)^2 / 2); GD step =
``loss.backward()`` (value and gradient), HVP = double backward (grad of <grad R, v>). Ours:
``model.value_and_grad`` and ``model.hvp``. Same data (shared memory), float64, the same thread
count for both (``torch.set_num_threads``). ratio = torch / ours (speed-up); results are checked
to agree (relative difference in the note).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from deltann.model import Workspace, hvp, value_and_grad

from .problems import problem
from .timing import Row, progress, time_pair

FULL = dict(d=(250, 500, 1000), m=(1, 4, 16), delta=4)
QUICK = dict(d=(20,), m=(1, 3), delta=4)
GD_TARGET, HVP_TARGET = 3.0, 5.0


def available() -> str | None:
    """None if torch imports, else why not."""
    try:
        import torch  # noqa: F401
    except ImportError as err:
        return f"torch not installed ({err}); pip install -e '.[bench]'"
    return None


def _torch_fns(X, y, p, v, threads):
    import torch

    torch.set_num_threads(threads)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    W = torch.tensor(p.W, requires_grad=True)
    a = torch.tensor(p.a, requires_grad=True)
    c = torch.tensor(float(p.c), dtype=torch.float64, requires_grad=True)
    vec = [torch.from_numpy(v.W), torch.from_numpy(v.a), torch.tensor(float(v.c),
                                                                       dtype=torch.float64)]

    def risk():
        f = torch.nn.functional.softplus(Xt @ W.T) @ a + c
        return 0.5 * torch.mean((f - yt) ** 2)

    def step():
        for t in (W, a, c):
            t.grad = None
        loss = risk()
        loss.backward()
        return loss.item(), W.grad.numpy(), a.grad.numpy(), c.grad.item()

    def hv():
        g = torch.autograd.grad(risk(), (W, a, c), create_graph=True)
        dot = sum(torch.sum(gi * vi) for gi, vi in zip(g, vec, strict=True))
        return [h.detach().numpy() for h in torch.autograd.grad(dot, (W, a, c))]

    return step, hv


def _rel(a, b) -> float:
    a, b = np.concatenate([np.ravel(x) for x in a]), np.concatenate([np.ravel(x) for x in b])
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def run(quick: bool, repeats: int, threads: int = 1) -> list[Row]:
    import torch

    cfg = QUICK if quick else FULL
    rows = []
    with threadpool_limits(threads):
        for d in cfg["d"]:
            n = cfg["delta"] * d
            for m in cfg["m"]:
                X, y, p, v, act, loss = problem(n, d, m, np.float64)
                ws = Workspace(n, d, m, X.dtype)
                t_step, t_hv = _torch_fns(X, y, p, v, threads)
                ours_g = value_and_grad(p, X, y, act, loss, ws)
                ref_g = t_step()
                err_g = _rel([ours_g[1].W, ours_g[1].a, ours_g[1].c], ref_g[1:])
                err_h = _rel(hvp(p, X, y, act, loss, v).vector(), [x for x in t_hv()])
                case = f"n={n} d={d} m={m} float64"
                for kind, ours_fn, ref_fn, err, tgt in (
                        ("GD step", partial(value_and_grad, p, X, y, act, loss, ws), t_step,
                         err_g, GD_TARGET),
                        ("HVP", partial(hvp, p, X, y, act, loss, v), t_hv, err_h, HVP_TARGET)):
                    ours, ref = time_pair(ours_fn, ref_fn, repeats)
                    ratio = ref.median / ours.median
                    rows.append(Row("torch", f"{kind} {case}", ours, f"torch {torch.__version__}",
                                    ref, ratio, "torch / ours", target=f"≥ {tgt:g}",
                                    met=ratio >= tgt, note=f"rel. diff {err:.1e}",
                                    extra=dict(n=n, d=d, m=m, kind=kind, rel_diff=err,
                                               threads=threads)))
                    progress(f"torch {kind} {case}: ours {ours.fmt()}, torch {ref.fmt()}, "
                             f"speed-up {ratio:.2f}")
    return rows
