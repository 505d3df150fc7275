"""Data parallelism across a CPU's cores for the NumPy layers: each batch split into shards, one per thread.

NumPy runs every element-wise pass (ReLU, pooling, im2col copies, Adam) on one core, while PyTorch threads
them. NumPy does release the GIL inside large ufuncs, copies and BLAS calls, so two Python threads that each
run a full forward and backward pass on half of the batch keep two cores busy:

    net = DataParallel(model, threads=2)       # model's weights, no copy of them (backend="process": see below)
    with net:                                  # starts the worker, pins BLAS to one thread per worker
        out = net.forward(xb); loss, g = loss_fn(out, yb); net.backward(g); optimizer.step()
        out, loss = net.train_step(xb, yb, loss_fn); optimizer.step()      # the same, one hand-over per batch

fit(..., threads=2) does the second. (Splitting Adam's element-wise update over two threads as well was
measured and dropped: no difference in the training step's time, its passes are bound by memory bandwidth.)

Whether it pays depends on the batch: each shard pays the full Python cost of a pass (about 0.4 ms for
section 3's CNN) and the GIL lets only one thread run Python at a time. For the main job's CNN on the 2-core
benchmark machine, two threads took 0.78-0.82x the one-thread time per epoch with batches of 64 and
0.94-1.12x with batches of 32 (benchmarks/cnn_numpy_vs_torch.py measures both).

``backend="process"`` runs shards 2.. in worker processes instead (fit(..., threads=2, backend="process")): a
thread that comes back from a NumPy call waits for the GIL while the other runs Python, a process never does.
Each worker is a fresh Python (no fork of a threaded parent) holding its own replica; the weights and gradients
live in two shared anonymous files, written and read in place, and a shard's inputs and outputs cross a socket.
The arithmetic is the thread backend's, so the results are bit for bit the same (tested). On the 2-core AMD EPYC,
one training step of the main job's CNN (batch 64, medians of blocks taken in turn): one thread 9.1-9.7 ms, two
threads 6.5-7.6 ms, two processes 5.8-6.6 ms. Starting a worker takes about 0.2 s.

What it computes. Rows ``[0, n)`` are cut into ``threads`` contiguous shards as evenly as possible; shard k
runs on replica k, a copy of the model's layers whose parameters are the model's own arrays (re-bound every
forward, so an optimizer's flat buffers are seen) and whose gradients are its own. backward adds the
replicas' parameter gradients into the model's in shard order. The loss gradient already carries the
batch's 1/N, so the sum is the full-batch gradient, up to the order of float additions: equal to the
single-thread pass within rounding (tests: 1e-12 relative in float64), and bit-for-bit reproducible for a
given number of threads, on any machine, however many cores it has.

Layers whose output depends on the whole batch (anything with buffers, like BatchNorm) are refused: a shard
would normalise with its own statistics. Dropout draws its masks from a separate stream per replica (the
replica's generator is the model's, jumped ahead), so masks are as random as in one thread, not the same ones.
"""
from __future__ import annotations

import contextlib
import copy
import queue
import threading

import numpy as np

from section2_optimization.layers import Module


def _modules(module: Module):
    yield module
    for _, child in module._children():
        yield from _modules(child)


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """[(lo, hi), ...]: ``shards`` contiguous row ranges of [0, n), sizes differing by at most one; empty ones
    (n < shards) are dropped."""
    base, extra = divmod(n, shards)
    bounds, lo = [], 0
    for k in range(shards):
        hi = lo + base + (k < extra)
        if hi > lo:
            bounds.append((lo, hi))
        lo = hi
    return bounds


@contextlib.contextmanager
def blas_threads(n: int):
    """Limit BLAS to ``n`` threads inside the block (threadpoolctl), restoring the previous limit after. With
    one matrix product per worker thread, BLAS's own threads would only oversubscribe the cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


BACKENDS = ("thread", "process")


class _Worker:
    """One long-lived thread that runs the jobs it is given, one at a time (a pool would cost ~10x more per job)."""

    def __init__(self, name: str):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args = job
            try:
                self._results.put((True, fn(*args)))
            except BaseException as exc:       # handed to the caller, who re-raises it
                self._results.put((False, exc))

    def submit(self, fn, *args) -> None:
        self._jobs.put((fn, args))

    def result(self):
        ok, value = self._results.get()
        if not ok:
            raise value
        return value

    def close(self, wait: bool = True) -> None:
        self._jobs.put(None)
        if wait:
            self._thread.join()


def _views(buffer, arrays) -> list[np.ndarray]:
    """Arrays shaped like ``arrays``, laid end to end in ``buffer`` (a shared mapping)."""
    views, offset = [], 0
    for a in arrays:
        views.append(np.ndarray(a.shape, a.dtype, buffer=buffer, offset=offset))
        offset += a.nbytes
    return views


def _shared_file(size: int):
    """An anonymous file of ``size`` bytes (in memory where the system has /dev/shm) and its shared mapping.
    It has no name, so nothing is left behind, however the processes end."""
    import mmap
    import os
    import tempfile

    file = tempfile.TemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    file.truncate(size)
    return file, mmap.mmap(file.fileno(), size)


def serve(conn_fd: int, weights_fd: int, grads_fd: int) -> None:
    """The worker process's loop (DataParallel's process backend starts it): receive the replica, bind its
    parameters and gradients to the two shared files, then run one shard per job until None or the parent
    goes away."""
    import mmap
    import signal
    from multiprocessing.connection import Connection

    from threadpoolctl import threadpool_limits

    signal.signal(signal.SIGINT, signal.SIG_IGN)        # Ctrl-C is the parent's to handle; it then closes us
    threadpool_limits(limits=1, user_api="blas")
    conn = Connection(conn_fd)
    replica = conn.recv()
    params = replica.parameters()
    size = sum(p.data.nbytes for p in params)
    maps = [mmap.mmap(fd, max(1, size)) for fd in (weights_fd, grads_fd)]
    data, grad = (_views(m, [p.data for p in params]) for m in maps)
    for p, d, g in zip(params, data, grad):
        p.data, p.grad = d, g
    conn.send((True, None))                             # ready
    while True:
        try:
            job = conn.recv()
        except EOFError:                                # the parent is gone
            return
        if job is None:                                 # closing: report this process's peak memory
            from shared_utils.runs import peak_rss_mb

            conn.send((True, peak_rss_mb()))
            return
        fn, arr, extra, flags = job
        for name, value in flags.items():
            setattr(replica, name, value)
        try:
            result = (True, fn(replica, arr, *extra))
            for p, g in zip(params, grad):
                if p.grad is not g:                     # a layer that stored a new array: back into the file
                    g[...] = p.grad
                    p.grad = g
        except BaseException as exc:                    # handed to the parent, who re-raises it
            result = (False, exc)
        try:
            conn.send(result)
        except Exception as exc:                        # an error or result that does not pickle
            conn.send((False, RuntimeError(f"the worker's result could not be sent back: {exc!r}")))


class _ProcessWorker:
    """The same submit/result interface as _Worker, but the replica runs in a separate Python process, whose
    Python code never waits for this process's GIL. Parameters and gradients are exchanged through two shared
    anonymous files (no copy on the worker's side); a shard's inputs and outputs go through a socket."""

    def __init__(self, name: str, replica: Module):
        import os
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection
        from pathlib import Path

        params = replica.parameters()
        size = max(1, sum(p.data.nbytes for p in params))
        self._files = [_shared_file(size) for _ in range(2)]
        self._replica, self.name = replica, name
        self.peak_rss_mb = None                         # the worker's own peak resident memory, once closed
        # the replica kept here shares the worker's arrays: DataParallel writes weights into them, reads gradients
        data, grad = (_views(m, [p.data for p in params]) for _, m in self._files)
        for p, d, g in zip(params, data, grad):
            d[...], g[...] = p.data, 0
            p.data, p.grad = d, g
        mine, theirs = socket.socketpair()
        fds = [theirs.fileno(), *(f.fileno() for f, _ in self._files)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                          env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from section2_optimization.parallel import serve; "
                                   "serve(*map(int, sys.argv[1:]))", *map(str, fds)], pass_fds=fds, env=env)
        theirs.close()
        self._conn = Connection(mine.detach())
        self._conn.send(replica)
        self.result()                                   # its parameters are bound

    def submit(self, fn, replica, arr, *extra) -> None:
        try:
            self._conn.send((fn, arr, extra, {"requires_input_grad": getattr(replica, "requires_input_grad", True)}))
        except OSError:
            raise self._ended() from None

    def result(self):
        try:
            ok, value = self._conn.recv()
        except (EOFError, OSError):
            raise self._ended() from None
        if not ok:
            raise value
        return value

    def _ended(self) -> RuntimeError:
        return RuntimeError(f"DataParallel's worker process {self.name} ended (exit code {self._process.poll()})")

    def close(self, wait: bool = True) -> None:
        if self._process is None:
            return
        try:
            self._conn.send(None)
            if wait and self._conn.poll(10):
                self.peak_rss_mb = self._conn.recv()[1]
        except (OSError, EOFError):
            pass
        if wait:
            try:
                self._process.wait(timeout=10)
            except Exception:
                self._process.kill()
                self._process.wait()
        self._conn.close()
        self._process = None
        for p in self._replica.parameters():            # private arrays again before the mappings go away
            p.data, p.grad = p.data.copy(), p.grad.copy()
        for file, mapping in self._files:
            file.close()                                # the mapping itself closes when no view is left


def _forward(replica: Module, x: np.ndarray, train: bool) -> np.ndarray:
    return replica.forward(x, train)


def _backward(replica: Module, grad: np.ndarray):
    return replica.backward(grad)


def _train_shard(replica: Module, batch, loss_fn, n: int):
    x, y = batch
    out = replica.forward(x, True)
    loss, grad = loss_fn(out, y)
    if len(x) != n:
        grad = grad * grad.dtype.type(len(x) / n)
    replica.backward(grad)
    return out, loss


class DataParallel(Module):
    """Run ``module`` on ``threads`` shards of every batch at once; see the module docstring for what is equal
    to a single-thread pass. Parameters, state_dict and load_state_dict are the wrapped module's own (same
    names, no prefix), so optimizers and checkpoints do not see the wrapper. Use it as a context manager, or
    call close(), to stop the worker threads."""

    def __init__(self, module: Module, threads: int = 2, backend: str = "thread"):
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        batch_wide = sorted({type(m).__name__ for m in _modules(module) if m.buffers()})
        if batch_wide:
            raise ValueError(f"{', '.join(batch_wide)} computes batch statistics, which a shard of the batch would "
                             f"change; train it with one thread")
        self.module, self.threads, self.backend = module, threads, backend
        self._replicas = [module] + [self._replica(k) for k in range(1, threads)]
        # the Parameter objects never change (an optimizer or astype re-binds their arrays), so the pairs are
        # listed once: walking the model for them costs about 25 us, twice per batch
        self._pairs = [list(zip(module.parameters(), replica.parameters())) for replica in self._replicas[1:]]
        self._workers: list[_Worker] = []      # started at the first batch, stopped by close()
        self.worker_peak_rss_mb = 0.0           # the largest peak memory of a closed worker process, in MB
        self._bounds: list[tuple[int, int]] = []
        self._blas = None

    def _replica(self, k: int) -> Module:
        replica = copy.deepcopy(self.module)
        for m in _modules(replica):
            for name, value in vars(m).items():
                if isinstance(value, np.random.Generator):   # its own stream: masks independent of shard 0's
                    setattr(m, name, np.random.Generator(value.bit_generator.jumped(k)))
        for p in replica.parameters():
            p.grad = np.zeros_like(p.data)
        return replica

    # -- the wrapped module stands in for the wrapper everywhere but forward and backward
    def _children(self):
        return iter(())

    def named_parameters(self, prefix: str = ""):
        return self.module.named_parameters(prefix)

    def state_dict(self, prefix: str = ""):
        return self.module.state_dict(prefix)

    def load_state_dict(self, state, prefix: str = "") -> None:
        self.module.load_state_dict(state, prefix)

    def astype(self, dtype) -> "DataParallel":
        self._stop_workers()                         # worker processes restart with blocks of the new dtype
        self.module.astype(dtype)
        for replica in self._replicas[1:]:
            replica.astype(dtype)
        return self

    @property
    def requires_input_grad(self):
        return getattr(self.module, "requires_input_grad", True)

    @requires_input_grad.setter
    def requires_input_grad(self, value):
        for replica in self._replicas:
            if hasattr(replica, "requires_input_grad"):
                replica.requires_input_grad = value

    # -- the work
    def _map(self, fn, arrays, extra=()):
        """fn(replica k, arrays[k], *extra) for every shard, shard 0 in this thread, the others on the workers."""
        if len(self._workers) < len(arrays) - 1:
            self._workers += [_ProcessWorker(f"DataParallel-{k}", self._replicas[k]) if self.backend == "process"
                              else _Worker(f"DataParallel-{k}") for k in range(len(self._workers) + 1, self.threads)]
        for worker, replica, arr in zip(self._workers, self._replicas[1:], arrays[1:]):
            worker.submit(fn, replica, arr, *extra)
        errors, results = [], []
        try:
            results.append(fn(self._replicas[0], arrays[0], *extra))
        except BaseException as exc:
            errors.append(exc)
        for worker in self._workers[:len(arrays) - 1]:   # always collect, so no job is left behind
            try:
                results.append(worker.result())
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return results

    def _share_weights(self):
        if self.backend == "process":               # into the blocks the worker processes read
            for pairs in self._pairs:
                for mine, theirs in pairs:
                    np.copyto(theirs.data, mine.data)
            return
        for pairs in self._pairs:
            for mine, theirs in pairs:
                theirs.data = mine.data

    def _gather_grads(self):
        for pairs in self._pairs[:len(self._bounds) - 1]:
            for mine, theirs in pairs:
                mine.grad += theirs.grad

    def forward(self, x, train=True):
        self._share_weights()
        self._bounds = shard_bounds(len(x), self.threads)
        outs = self._map(_forward, [x[lo:hi] for lo, hi in self._bounds], (train,))
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def train_step(self, x, y, loss_fn):
        """Forward, loss and backward of every shard in one pass on its own thread, one hand-over per batch
        instead of two: returns (outputs, loss) and leaves the batch's gradient in the parameters. ``loss_fn``
        must average over the rows (softmax cross-entropy, mean squared error): shard k's loss and gradient
        are weighted by its share n_k / n, which sums to the whole batch's mean."""
        self._share_weights()
        n = len(x)
        self._bounds = shard_bounds(n, self.threads)
        parts = self._map(_train_shard, [(x[lo:hi], y[lo:hi]) for lo, hi in self._bounds], (loss_fn, n))
        self._gather_grads()
        outs = [out for out, _ in parts]
        loss = sum(float(part_loss) * (hi - lo) / n for (_, part_loss), (lo, hi) in zip(parts, self._bounds))
        return (outs[0] if len(outs) == 1 else np.concatenate(outs)), loss

    def backward(self, grad_out):
        grads = self._map(_backward, [grad_out[lo:hi] for lo, hi in self._bounds])
        self._gather_grads()
        if any(g is None for g in grads):
            return None
        return grads[0] if len(grads) == 1 else np.concatenate(grads)

    # -- lifetime
    def __enter__(self):
        if self.threads > 1 and self._blas is None:
            self._blas = blas_threads(1)
            self._blas.__enter__()
        return self

    def __del__(self):
        for worker in getattr(self, "_workers", ()):
            worker.close(wait=False)       # garbage collection may run on any thread: never join here

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        """Stop the workers (a later batch starts them again) and restore BLAS's thread count."""
        self._stop_workers()
        if self._blas is not None:
            blas, self._blas = self._blas, None
            blas.__exit__(None, None, None)

    def _stop_workers(self) -> None:
        for worker in self._workers:
            worker.close()
            self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, getattr(worker, "peak_rss_mb", None) or 0.0)
        self._workers = []

    def __repr__(self):
        return f"DataParallel({self.module!r}, threads={self.threads}, backend={self.backend!r})"
