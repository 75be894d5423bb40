"""asv-style benchmarks of the line-tuple CNN (paper Sec. 3.1): one training step at batch 200
tuples, the SNR experiment's N1 pass and per-tuple gradients, the image generator, the step's
share of the machine's float32 GEMM throughput, and the same step in PyTorch eager on the CPU,
all measured in the same run.

The step is tuple-lines' own: N1 (on :class:`failgeom.nn.ConvPool2D`) on every image of a tuple
plus N2 on the k scores, forward, the decomposition loss (mean tuple hinge plus the mean over
all B k images of the image hinge, as the original code), backward and an Adam update, float32.
:class:`TrainStepVsTorch` times it against torch (``Conv2d``, ``MaxPool2d``, ``Linear``,
``torch.optim.Adam``, the same shapes and losses) at the same number of threads, numpy and torch
rounds interleaved in one process, and reports the median ratio; it is skipped where torch is not
installed (torch is no dependency of failgeom). Two threads on the NumPy side are two
ConvPool2D workers with one BLAS thread each (:data:`THREADING`).

Run ``python -m benchmarks.bench_lines`` from the repository root for a table;
``FAILGEOM_BENCH_SMOKE=1`` shrinks every size so that CI can run each benchmark once quickly.
On a shared machine read the ratios next to the load average printed with them: a second thread
helps either side only when a second core is free.
"""

from __future__ import annotations

import os
import time

import numpy as np

from failgeom import nn
from failgeom.experiments import tuple_lines as tl
from failgeom.experiments import tuple_lines_snr as snr
from failgeom.problems.lines import SIZE, sample_line_images, sample_tuples

from .common import smoke

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
        self.params = tl.initial_params(self.model, 0, (0,), np.float32)
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
    """Exact per-tuple score-layer gradients for one chunk of tuples at initialisation (float64,
    both losses, ``score_layer_grads_all`` of ``tuple-lines-snr``)."""

    params = [1, 4]
    param_names = ["k"]

    def setup(self, k):
        n = sizes()["snr_chunk"]
        self.model = tl.TupleModel(k)
        self.params_ = tl.initial_params(self.model, 0, (0,), np.float64)
        self.data = sample_tuples(np.random.default_rng(2), (1, n), k, np.float64)

    def time_snr_chunk(self, k):
        snr.score_layer_grads_all(self.model, self.params_, *self.data)


# --------------------------------------------------------------------------------------------
# the step with failgeom's fused conv + pool layers, and the same step in PyTorch


class NumpyStep:
    """One Adam step of tuple-lines' own model on a fixed batch (R = 1, float32): N1 on
    :class:`failgeom.nn.ConvPool2D` with the original code's init, the decomposition loss with
    the original's mean image hinge, ``loss_and_grads`` of the experiment, the paper's Adam.
    ``workers`` threads run the conv chunks."""

    def __init__(self, k: int, batch: int, workers: int = 1):
        self.model = tl.TupleModel(k)
        for layer in self.model.n1.layers:
            if isinstance(layer, nn.ConvPool2D):
                layer.workers = workers
        self.params = tl.initial_params(self.model, 0, (0,), np.float32)
        self.batch = sample_tuples(np.random.default_rng(1), (1, batch), k, np.float32)
        self.optimizer = nn.Adam(1e-3, **nn.PAPER_ADAM)

    def __call__(self):
        value, grads = tl.loss_and_grads(self.model, self.params, *self.batch, "decomposition")
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


class SNRPoolFeatures:
    """The unit of work of ``tuple-lines-snr``'s pool: N1's forward pass (score-layer input and
    score) on one chunk of images, at the paper preset's chunk and dtype (forward only, R = 1)."""

    def setup(self):
        config = snr.PRESETS["paper"]
        n = sizes()["snr_chunk"] if smoke() else config.chunk
        self.n1 = tl.TupleModel(1, conv_init=config.conv_init).n1
        self.p1, _ = self.n1.init(np.random.default_rng(0), 1, (SIZE, SIZE, 1), config.dtype)
        images, _ = sample_line_images(np.random.default_rng(2), (n,), config.dtype)
        self.x = images[None, ..., None]

    def time_chunk(self):
        self.n1.forward(self.p1, self.x)


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
    from threadpoolctl import threadpool_limits

    s = sizes()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; cpus {os.cpu_count()}")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed: no comparison")
    else:
        compare_with_torch()
    print("the rest at one BLAS thread (threadpoolctl):")
    with threadpool_limits(1, user_api="blas"):
        _single_thread_table(s)
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f}")


def _single_thread_table(s: dict) -> None:
    for name, timer in (("wall", _timed), ("cpu", _cpu_timed)):
        gemm = gemm_macs_per_s(s["gemm_n"], s["repeats"], timer)
        print(f"[{name} time] float32 GEMM {s['gemm_n']}^3: {gemm / 1e9:.1f} GMAC/s")
        for k in TrainStep.params:
            steps = (("forward + backward", _Step(k).run), ("with Adam", NumpyStep(k, s["batch"])))
            for label, step in steps:
                step()
                best = min(timer(step) for _ in range(s["repeats"]))
                macs = step_macs(k, s["batch"])
                print(f"[{name} time] train step k={k} batch={s['batch']}, {label}: {best * 1e3:.0f} ms, "
                      f"{macs / 1e9:.2f} GMAC, {macs / best / 1e9:.1f} GMAC/s = "
                      f"{macs / best / gemm:.0%} of GEMM")
    for k in SNRPass.params:
        bench = SNRPass()
        bench.setup(k)
        wall = min(_timed(lambda: bench.time_snr_chunk(k)) for _ in range(s["repeats"]))  # noqa: B023
        cpu = min(_cpu_timed(lambda: bench.time_snr_chunk(k)) for _ in range(s["repeats"]))  # noqa: B023
        print(f"SNR per-tuple gradients k={k}, {s['snr_chunk']} tuples, both losses, float64: "
              f"{wall * 1e3:.0f} ms wall, {cpu * 1e3:.0f} ms cpu")
    bench = SNRPoolFeatures()
    bench.setup()
    wall = min(_timed(bench.time_chunk) for _ in range(s["repeats"]))
    print(f"SNR pool features: N1 forward on {bench.x.shape[1]} images, {bench.x.dtype}: "
          f"{wall * 1e3:.1f} ms wall ({bench.x.shape[1] / wall:.0f} images/s)")
    g = Generator()
    g.setup()
    print(f"{s['images']} line images: {min(_timed(g.time_images) for _ in range(3)):.2f} s")


if __name__ == "__main__":
    main()
