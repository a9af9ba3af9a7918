"""Section batched: R GD runs on the same samples in one process (``deltann.batched``).

Per case (n, d, m, R) with R m <= 16, whole runs of ``steps`` GD steps (softplus, square loss,
schedule both), timed interleaved in one process, one BLAS thread:
  one        a single run (``train``);
  separate   the R runs one after another (``train`` R times);
  shared     ``train_many``: one pass over X per step, per-run GEMMs (bitwise the separate runs,
             checked before timing);
  stacked    ``train_many(stacked=True)``: one (R m) x d GEMM per block (checked to 1e-9).
Rows: shared vs separate (the speed-up), and shared and stacked against one run (target: R runs
in <= 1.5x the time of one).
"""

from __future__ import annotations

import numpy as np

from deltann.activations import get_activation
from deltann.batched import RunSpec, train_many
from deltann.data import make_dataset
from deltann.losses import get_loss
from deltann.targets import get_target
from deltann.train import TrainConfig, train

from .timing import Row, _once, progress, stat

FULL = dict(cases=((1000, 250, 1, 16), (4000, 1000, 2, 8), (4000, 1000, 4, 4),
                   (20000, 500, 4, 4), (20000, 500, 16, 1)), steps=100)
QUICK = dict(cases=((200, 50, 1, 4), (400, 50, 2, 2)), steps=10)
TARGET = 1.5


def _specs(m: int, R: int, steps: int) -> list[RunSpec]:
    cfg = TrainConfig(steps=steps, lr=0.1, n_records=4)
    return [RunSpec(get_activation("softplus"), get_loss("square"), m, cfg,
                    np.random.default_rng(i)) for i in range(R)]


def run(quick: bool, repeats: int) -> list[Row]:
    from threadpoolctl import threadpool_limits

    c = QUICK if quick else FULL
    rows: list[Row] = []
    with threadpool_limits(1):
        for n, d, m, R in c["cases"]:
            progress(f"batched: n={n} d={d} m={m} R={R}")
            data = make_dataset(get_target("z2sat"), d, n, 100, 0.0, np.random.SeedSequence(1))
            steps = c["steps"]

            def one(m=m, steps=steps, data=data):
                s = _specs(m, 1, steps)[0]
                return [train(data, s.act, s.loss, s.m, s.cfg, s.rng)]

            def separate(m=m, R=R, steps=steps, data=data):
                return [train(data, s.act, s.loss, s.m, s.cfg, s.rng)
                        for s in _specs(m, R, steps)]

            def shared(m=m, R=R, steps=steps, data=data):
                return train_many(data, _specs(m, R, steps))

            def stacked(m=m, R=R, steps=steps, data=data):
                return train_many(data, _specs(m, R, steps), stacked=True)

            ref = separate()
            for a, b, c_ in zip(ref, shared(), stacked(), strict=True):
                if not np.array_equal(a.overlap, b.overlap):
                    raise AssertionError(f"shared pass differs from separate runs at n={n}")
                np.testing.assert_allclose(c_.overlap, a.overlap, rtol=1e-9, atol=1e-12)
            fns = {"one": one, "separate": separate, "shared": shared, "stacked": stacked}
            times = {k: [] for k in fns}
            for _ in range(repeats):  # interleaved: every variant sees the same load
                for k, fn in fns.items():
                    times[k].append(_once(fn))
            st = {k: stat(v) for k, v in times.items()}
            case = f"n={n}, d={d}, m={m}, R={R}, {steps} steps"
            rows.append(Row("batched", f"{case}: shared pass", st["shared"],
                            f"{R} separate runs", st["separate"],
                            st["separate"].median / st["shared"].median, "separate / shared",
                            note="bitwise equal", extra=dict(n=n, d=d, m=m, R=R, mode="shared")))
            for mode in ("shared", "stacked"):
                ratio = st[mode].median / st["one"].median
                rows.append(Row("batched", f"{case}: {mode} vs one run", st[mode], "one run",
                                st["one"], ratio, f"{mode} / one run",
                                target=f"≤ {TARGET}" if R > 1 else "",
                                met=(ratio <= TARGET) if R > 1 else None,
                                note="bitwise equal" if mode == "shared" else "equal to 1e-9",
                                extra=dict(n=n, d=d, m=m, R=R, mode=mode)))
    return rows
