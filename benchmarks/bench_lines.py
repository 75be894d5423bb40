"""asv-style benchmarks of the line-tuple CNN (paper Sec. 3.1): one training step at batch 200
tuples, the per-sample SNR pass, the image generator, and the step's share of the machine's
float32 GEMM throughput measured in the same run.

Run directly (``python benchmarks/bench_lines.py``) for a table; ``FAILGEOM_BENCH_SMOKE=1``
shrinks every size so that CI can run each benchmark once quickly.
"""

from __future__ import annotations

import os
import time

import numpy as np

from failgeom.experiments import tuple_lines as tl
from failgeom.experiments import tuple_lines_snr as snr
from failgeom.problems.lines import sample_line_images, sample_tuples

#: sizes used when FAILGEOM_BENCH_SMOKE=1
SMOKE = {"batch": 8, "snr_chunk": 16, "images": 2_000, "gemm_n": 256, "repeats": 1}
FULL = {"batch": 200, "snr_chunk": 250, "images": 100_000, "gemm_n": 2048, "repeats": 5}


def sizes() -> dict:
    return SMOKE if os.environ.get("FAILGEOM_BENCH_SMOKE") == "1" else FULL


def step_macs(k: int, batch: int, R: int = 1) -> int:
    """Multiply-adds of one training step (forward + backward, no input gradient of the first
    conv), counted from the layer shapes of Sec. 3.1."""
    conv1 = 28 * 28 * 25 * 1 * 16
    conv2 = 14 * 14 * 25 * 16 * 16
    dense = 784 * 50 + 50 * 100 + 100 * 1
    per_image = (conv1 + conv2 + dense) + (conv1 + 2 * conv2 + 2 * dense)
    n2 = 3 * (k * 100 + 100)
    return R * batch * (k * per_image + n2)


def gemm_macs_per_s(n: int, repeats: int, timer=None) -> float:
    """Best float32 ``n x n`` GEMM rate of this machine now, in multiply-adds per second."""
    timer = timer or _timed
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(timer(lambda: a @ b) for _ in range(max(repeats, 2)))
    return n**3 / best


def _timed(fn, clock=time.perf_counter) -> float:
    start = clock()
    fn()
    return clock() - start


def _cpu_timed(fn) -> float:
    """CPU seconds of this process (all its threads): steadier than wall time on a shared
    machine, and comparable between the step and the GEMM when both use the same threads."""
    return _timed(fn, time.process_time)


class _Step:
    def __init__(self, k: int, approach: str = "decomposition"):
        s = sizes()
        self.k, self.approach, self.batch = k, approach, s["batch"]
        self.model = tl.TupleModel(k)
        self.params = tl.initial_params(self.model, 0, 1, np.float32)
        rng = np.random.default_rng(1)
        self.batch_data = sample_tuples(rng, (1, self.batch), k, np.float32)

    def run(self):
        return tl.loss_and_grads(self.model, self.params, *self.batch_data, self.approach)


class TrainStep:
    """One forward + backward of the whole model (both networks, decomposition loss, the
    heavier of the two) on 200 tuples, float32, one replica."""

    params = [1, 4]
    param_names = ["k"]

    def setup(self, k):
        self.step = _Step(k)
        self.step.run()

    def time_step(self, k):
        self.step.run()

    def peakmem_step(self, k):
        self.step.run()

    def track_gemm_fraction(self, k):
        """The step's multiply-add rate over the float32 GEMM rate measured just before."""
        s = sizes()
        gemm = gemm_macs_per_s(s["gemm_n"], s["repeats"])
        best = min(_timed(self.step.run) for _ in range(s["repeats"]))
        return step_macs(k, self.step.batch) / best / gemm

    track_gemm_fraction.unit = "fraction"


class SNRPass:
    """Exact per-sample score-layer gradients for one chunk of tuples at initialisation (float64,
    both losses), the unit of work of ``tuple-lines-snr``."""

    params = [1, 4]
    param_names = ["k"]

    def setup(self, k):
        n = sizes()["snr_chunk"]
        self.model = tl.TupleModel(k)
        self.params_ = tl.initial_params(self.model, 0, 1, np.float64)
        self.data = sample_tuples(np.random.default_rng(2), (1, n), k, np.float64)

    def time_snr_chunk(self, k):
        snr.score_layer_grads_all(self.model, self.params_, *self.data)


class Generator:
    """Rendering fresh line images (the issue asks for 100,000 in a few seconds)."""

    def setup(self):
        self.rng = np.random.default_rng(3)

    def time_images(self):
        sample_line_images(self.rng, (sizes()["images"],))


def main() -> None:
    s = sizes()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; cpus {os.cpu_count()}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    for name, timer in (("wall", _timed), ("cpu", _cpu_timed)):
        gemm = gemm_macs_per_s(s["gemm_n"], s["repeats"], timer)
        print(f"[{name} time] float32 GEMM {s['gemm_n']}^3: {gemm / 1e9:.1f} GMAC/s")
        for k in TrainStep.params:
            step = _Step(k)
            step.run()
            best = min(timer(step.run) for _ in range(s["repeats"]))
            macs = step_macs(k, step.batch)
            print(f"[{name} time] train step k={k} batch={step.batch}: {best * 1e3:.0f} ms, "
                  f"{macs / 1e9:.2f} GMAC, {macs / best / 1e9:.1f} GMAC/s = {macs / best / gemm:.0%} of GEMM")
    for k in SNRPass.params:
        bench = SNRPass()
        bench.setup(k)
        wall = min(_timed(lambda: bench.time_snr_chunk(k)) for _ in range(s["repeats"]))
        cpu = min(_cpu_timed(lambda: bench.time_snr_chunk(k)) for _ in range(s["repeats"]))
        print(f"SNR pass k={k}, {s['snr_chunk']} tuples, both losses, float64: "
              f"{wall * 1e3:.0f} ms wall, {cpu * 1e3:.0f} ms cpu")
    g = Generator()
    g.setup()
    print(f"{s['images']} line images: {min(_timed(g.time_images) for _ in range(3)):.2f} s")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f}")


if __name__ == "__main__":
    main()
