"""asv-style benchmarks of the line-tuple CNN (paper Sec. 3.1): one training step at batch 200
tuples, the per-sample SNR pass, the image generator, the step's share of the machine's float32
GEMM throughput, and the same step in PyTorch eager on the CPU, all measured in the same run.

The step is N1 on every image of a tuple plus N2 on the k scores, forward, both losses (mean
tuple hinge plus the mean over all B k images of the image hinge, as the original code),
backward and an Adam update, float32. :class:`TrainStepVsTorch` times it with failgeom's fused
conv + pool layers (:class:`failgeom.nn.ConvPool2D`) and with torch (``Conv2d``, ``MaxPool2d``,
``Linear``, ``torch.optim.Adam``) at the same number of threads, numpy and torch rounds
interleaved in one process, and reports the median ratio; it is skipped where torch is not
installed (torch is no dependency of failgeom).

Run ``python -m benchmarks.bench_lines`` from the repository root for a table;
``FAILGEOM_BENCH_SMOKE=1`` shrinks every size so that CI can run each benchmark once quickly.
"""

from __future__ import annotations

import os
import time

import numpy as np

from failgeom import nn
from failgeom.experiments import tuple_lines as tl
from failgeom.experiments import tuple_lines_snr as snr
from failgeom.problems.lines import SIZE, sample_line_images, sample_tuples

from .common import smoke  # noqa: F401  (applies failgeom.runtime.configure before numpy work)

#: sizes used when FAILGEOM_BENCH_SMOKE=1
SMOKE = {"batch": 8, "snr_chunk": 16, "images": 2_000, "gemm_n": 256, "repeats": 1,
         "rounds": 1, "number": 1}
#: rounds x number: the interleaved comparison with torch times each side rounds x number steps
FULL = {"batch": 200, "snr_chunk": 250, "images": 100_000, "gemm_n": 2048, "repeats": 5,
        "rounds": 7, "number": 3}


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


# --------------------------------------------------------------------------------------------
# the step with failgeom's fused conv + pool layers, and the same step in PyTorch


def fast_n1(workers: int = 1, chunk: int | None = None) -> nn.Sequential:
    """N1 of Sec. 3.1 (conv 5x5x16 'same' + bias, 2x2 max-pool, twice; no ReLU after the convs,
    as in the original code; Dense 784 -> 50 -> 100 -> 1 with ReLUs) on ConvPool2D."""
    return nn.Sequential([
        nn.ConvPool2D(16, 5, init_std=1 / np.sqrt(SIZE), chunk=chunk, workers=workers),
        nn.ConvPool2D(16, 5, init_std=1 / 4, chunk=chunk, workers=workers),
        nn.Flatten(), nn.Dense(50), nn.ReLU(), nn.Dense(100), nn.ReLU(), nn.Dense(1),
    ])


def step_losses(out, scores, image_labels, labels):
    """Mean tuple hinge plus the mean over all B k images of the image hinge (the original
    code's decomposition loss), with its gradients w.r.t. ``out (R, B, 1)`` and ``scores``."""
    k = scores.shape[2]
    value, dout = nn.losses.hinge(out, labels[..., None])
    v_img, dscores = nn.losses.hinge(scores, image_labels)  # mean over B of the sum over k
    return value + v_img / k, dout, dscores / np.asarray(k, dtype=scores.dtype)


class NumpyStep:
    """One Adam step of ``TupleModel(k, fast_n1())`` on a fixed batch (R = 1, float32)."""

    def __init__(self, k: int, batch: int, workers: int = 1):
        self.model = tl.TupleModel(k, n1=fast_n1(workers))
        rng = np.random.default_rng(0)
        self.params = self.model.init(list(rng.spawn(1)), 1, np.float32)
        self.batch = sample_tuples(np.random.default_rng(1), (1, batch), k, np.float32)
        self.optimizer = nn.Adam(1e-3, **nn.PAPER_ADAM)

    def __call__(self):
        images, image_labels, labels = self.batch
        out, scores, cache = self.model.forward(self.params, images)
        value, dout, dscores = step_losses(out, scores, image_labels, labels)
        _, grads = self.model.backward(self.params, cache, dout, dscores)
        self.optimizer.step(self.params, grads)
        return value


class TorchStep:
    """The same step in PyTorch eager (NCHW, ``torch.optim.Adam`` with the paper's betas/eps)."""

    def __init__(self, torch, k: int, batch: int):
        self.torch, self.k = torch, k
        T = torch.nn
        torch.manual_seed(0)
        self.n1 = T.Sequential(T.Conv2d(1, 16, 5, padding=2), T.MaxPool2d(2), T.Conv2d(16, 16, 5, padding=2),
                               T.MaxPool2d(2), T.Flatten(), T.Linear(784, 50), T.ReLU(), T.Linear(50, 100),
                               T.ReLU(), T.Linear(100, 1))
        self.n2 = T.Sequential(T.Sigmoid(), T.Linear(k, 100), T.ReLU(), T.Linear(100, 1))
        params = list(self.n1.parameters()) + list(self.n2.parameters())
        a = nn.PAPER_ADAM
        self.optimizer = torch.optim.Adam(params, lr=1e-3, betas=(a["beta1"], a["beta2"]), eps=a["eps"])
        images, image_labels, labels = sample_tuples(np.random.default_rng(1), (batch,), k, np.float32)
        self.x = torch.from_numpy(np.ascontiguousarray(images.reshape(batch * k, 1, SIZE, SIZE)))
        self.y_img = torch.from_numpy(image_labels.reshape(-1).astype(np.float32))
        self.y = torch.from_numpy(labels.astype(np.float32))

    def __call__(self):
        torch = self.torch
        scores = self.n1(self.x)
        out = self.n2(scores.reshape(-1, self.k)).reshape(-1)
        loss = torch.relu(1 - out * self.y).mean() + torch.relu(1 - scores.reshape(-1) * self.y_img).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss


def interleaved_seconds(fns, rounds: int, number: int) -> list[list[float]]:
    """Per round, the mean seconds of ``number`` calls of each function, the functions taking
    turns within every round (order reversed every other round) so that a change of machine
    load hits all of them alike. Returns one list of ``rounds`` times per function."""
    times = [[] for _ in fns]
    for f in fns:
        f()  # warm-up: scratch memory, Adam moments, torch's allocator
    for r in range(rounds):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            start = time.perf_counter()
            for _ in range(number):
                fns[i]()
            times[i].append((time.perf_counter() - start) / number)
    return times


class _Threads:
    """``blas`` BLAS threads for NumPy (threadpoolctl) and ``torch_threads`` intra-op threads
    for torch, until :meth:`restore`."""

    def __init__(self, blas: int, torch=None, torch_threads: int = 1):
        from threadpoolctl import threadpool_limits

        self.limits = threadpool_limits(blas, user_api="blas")
        self.torch = torch
        if torch is not None:
            self.previous = torch.get_num_threads()
            torch.set_num_threads(torch_threads)

    def restore(self):
        self.limits.restore_original_limits()
        if self.torch is not None:
            self.torch.set_num_threads(self.previous)


#: numpy settings per thread count: (BLAS threads, ConvPool2D workers); two threads run the conv
#: chunks on two workers, each with one BLAS thread
THREADING = {1: (1, 1), 2: (1, 2)}


class TrainStepFast:
    """The step on ConvPool2D at 1 and 2 threads; no torch needed."""

    params = [[1, 4], [1, 2]]
    param_names = ["k", "threads"]

    def setup(self, k, threads):
        blas, workers = THREADING[threads]
        self.threads = _Threads(blas)
        self.step = NumpyStep(k, sizes()["batch"], workers)
        self.step()

    def teardown(self, k, threads):
        self.threads.restore()

    def time_step(self, k, threads):
        self.step()

    def track_gflops(self, k, threads):
        """Nominal GFLOP/s: 2 x the direct method's multiply-adds (:func:`step_macs`) per second."""
        s = sizes()
        (t,) = interleaved_seconds([self.step], s["rounds"], s["number"])
        return 2 * step_macs(k, sizes()["batch"]) / float(np.median(t)) / 1e9

    track_gflops.unit = "GFLOP/s"


class TrainStepVsTorch:
    """failgeom's step over torch's at the same number of threads, interleaved in one process."""

    params = [[1, 4], [1, 2]]
    param_names = ["k", "threads"]

    def setup(self, k, threads):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed") from None  # asv: skip
        blas, workers = THREADING[threads]
        self.threads = _Threads(blas, torch, threads)
        batch = sizes()["batch"]
        self.numpy, self.torch = NumpyStep(k, batch, workers), TorchStep(torch, k, batch)

    def teardown(self, k, threads):
        self.threads.restore()

    def time_numpy(self, k, threads):
        self.numpy()

    def time_torch(self, k, threads):
        self.torch()

    time_numpy.reference = "time_torch"

    def track_ratio(self, k, threads):
        """Median over interleaved rounds of (numpy time / torch time)."""
        s = sizes()
        t_np, t_torch = interleaved_seconds([self.numpy, self.torch], s["rounds"], s["number"])
        return float(np.median(np.divide(t_np, t_torch)))

    track_ratio.unit = "x torch"


class SNRPassFast:
    """The SNR chunk of :class:`SNRPass` with N1 on ConvPool2D: N1 and N2 forward, then the
    exact per-tuple gradients of the score layer for both losses (float64, one replica)."""

    params = [1, 4]
    param_names = ["k"]

    def setup(self, k):
        n = sizes()["snr_chunk"]
        self.model = tl.TupleModel(k, n1=fast_n1())
        self.params_ = self.model.init(list(np.random.default_rng(0).spawn(1)), 1, np.float64)
        self.data = sample_tuples(np.random.default_rng(2), (1, n), k, np.float64)

    def time_snr_chunk(self, k):
        images, image_labels, labels = self.data
        out, scores, cache = self.model.forward(self.params_, images)
        score_layer = len(self.model.n1.layers) - 1
        for approach in tl.APPROACHES:
            _, dout, dscores = tl.tuple_losses(out, scores, image_labels, labels, approach, reduction="sum")
            ds, _ = self.model.backward(self.params_, cache, dout, dscores, need_n1=False)
            R, B, k = ds.shape
            per_image = self.model.n1.per_example_grads(self.params_[0], cache[0], ds.reshape(R, B * k, 1),
                                                        score_layer)
            per_image["W"].reshape(R, B, k, -1).sum(axis=2)


class Generator:
    """Rendering fresh line images (the issue asks for 100,000 in a few seconds)."""

    def setup(self):
        self.rng = np.random.default_rng(3)

    def time_images(self):
        sample_line_images(self.rng, (sizes()["images"],))


def compare_with_torch(ks=(1, 4), threads=(1, 2), out=print) -> list[dict]:
    """The table of :class:`TrainStepVsTorch`: per thread count and k, the median step times
    of interleaved rounds, their ratio and the nominal GFLOP/s of both."""
    import torch

    s = sizes()
    rows = []
    for th in threads:
        blas, workers = THREADING[th]
        for k in ks:
            limits = _Threads(blas, torch, th)
            try:
                steps = [NumpyStep(k, s["batch"], workers), TorchStep(torch, k, s["batch"])]
                t_np, t_torch = interleaved_seconds(steps, s["rounds"], s["number"])
            finally:
                limits.restore()
            flop = 2 * step_macs(k, s["batch"])
            row = {"threads": th, "k": k, "numpy_ms": 1e3 * float(np.median(t_np)),
                   "torch_ms": 1e3 * float(np.median(t_torch)),
                   "ratio": float(np.median(np.divide(t_np, t_torch))),
                   "numpy_gflops": flop / float(np.median(t_np)) / 1e9,
                   "torch_gflops": flop / float(np.median(t_torch)) / 1e9}
            rows.append(row)
            out(f"threads={th} k={k} batch={s['batch']}: numpy {row['numpy_ms']:.1f} ms "
                f"({row['numpy_gflops']:.1f} GFLOP/s), torch {row['torch_ms']:.1f} ms "
                f"({row['torch_gflops']:.1f} GFLOP/s), numpy/torch {row['ratio']:.2f} "
                f"(median of {s['rounds']} interleaved rounds of {s['number']} steps; "
                f"round ratios {min(np.divide(t_np, t_torch)):.2f}..{max(np.divide(t_np, t_torch)):.2f})")
    return rows


def main() -> None:
    s = sizes()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; cpus {os.cpu_count()}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed: no comparison")
    else:
        compare_with_torch()
    for name, timer in (("wall", _timed), ("cpu", _cpu_timed)):
        gemm = gemm_macs_per_s(s["gemm_n"], s["repeats"], timer)
        print(f"[{name} time] float32 GEMM {s['gemm_n']}^3: {gemm / 1e9:.1f} GMAC/s")
        for k in TrainStep.params:
            steps = (("experiment's N1", _Step(k).run), ("ConvPool2D N1", NumpyStep(k, s["batch"])))
            for label, step in steps:
                step()
                best = min(timer(step) for _ in range(s["repeats"]))
                macs = step_macs(k, s["batch"])
                print(f"[{name} time] train step k={k} batch={s['batch']}, {label}: {best * 1e3:.0f} ms, "
                      f"{macs / 1e9:.2f} GMAC, {macs / best / 1e9:.1f} GMAC/s = "
                      f"{macs / best / gemm:.0%} of GEMM")
    for k in SNRPass.params:
        for label, cls, method in (("experiment's N1", SNRPass, "time_snr_chunk"),
                                   ("ConvPool2D N1", SNRPassFast, "time_snr_chunk")):
            bench = cls()
            bench.setup(k)
            fn = getattr(bench, method)
            wall = min(_timed(lambda: fn(k)) for _ in range(s["repeats"]))
            cpu = min(_cpu_timed(lambda: fn(k)) for _ in range(s["repeats"]))
            print(f"SNR pass k={k}, {s['snr_chunk']} tuples, both losses, float64, {label}: "
                  f"{wall * 1e3:.0f} ms wall, {cpu * 1e3:.0f} ms cpu")
    g = Generator()
    g.setup()
    print(f"{s['images']} line images: {min(_timed(g.time_images) for _ in range(3)):.2f} s")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f}")


if __name__ == "__main__":
    main()
