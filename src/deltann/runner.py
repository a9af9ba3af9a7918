"""What every workflow script does around the library call: logging, BLAS threads, errors."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable

__all__ = ["pin_blas_threads", "setup_logging", "run_script"]

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_blas_threads(n: int) -> dict:
    """Limit BLAS/OpenMP pools to ``n`` threads (env vars for children, threadpoolctl here).

    Returns the pools threadpoolctl now reports, for the log.
    """
    from threadpoolctl import threadpool_info, threadpool_limits

    n = max(1, int(n))
    for var in _BLAS_VARS:
        os.environ[var] = str(n)
    threadpool_limits(n)
    return {p["internal_api"]: p["num_threads"] for p in threadpool_info()}


def setup_logging(path: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Log to ``path`` (the rule's log file) and stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return logging.getLogger("deltann")


def _terminate(signum, frame):
    """SIGTERM (scheduler, Ctrl-C of the group, snakemake) -> SystemExit, so cleanup code runs."""
    raise SystemExit(128 + signum)


def run_script(smk, body: Callable[[], None]) -> None:
    """Run a workflow script body with logging to smk.log[0] and BLAS pinned to smk.threads.

    Exceptions are logged with traceback (so --show-failed-logs shows them) and re-raised.
    SIGTERM becomes SystemExit: a half-written output's temporary file is removed and the log says
    the job was terminated (outputs only ever appear complete, see ``io.write_netcdf``).
    """
    signal.signal(signal.SIGTERM, _terminate)
    log = setup_logging(smk.log[0] if len(smk.log) else None)
    pools = pin_blas_threads(smk.threads)
    log.info("rule %s, wildcards %s, threads %d, BLAS pools %s", smk.rule, dict(smk.wildcards),
             smk.threads, pools)
    from .io import ResultFileError

    try:
        body()
    except (ResultFileError, FileNotFoundError) as err:  # a user's file: say what to do
        log.error("rule %s: %s", smk.rule, err)
        raise SystemExit(1) from None
    except SystemExit as err:
        log.error("rule %s terminated (exit status %s); no output written", smk.rule, err.code)
        raise
    except Exception:
        log.exception("rule %s failed", smk.rule)
        raise
