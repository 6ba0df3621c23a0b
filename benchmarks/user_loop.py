"""The loop a user writes, against PyTorch, plain NumPy and the bare matrix products.

Each contender runs in its own process (issue 19).

    python benchmarks/user_loop.py            # the full table (about 15 minutes); README section
    python benchmarks/user_loop.py --quick    # a few seconds: every contender runs, printed only
    python benchmarks/user_loop.py --no-numba # twinnet without numba only (TWINNET_FUSED=0), printed
    python benchmarks/user_loop.py --cost     # the cost curve: samples/s and peak RSS by width, depth;
                                              # its own README section
    python benchmarks/user_loop.py --threads 1  # every contender on one thread, printed

Contenders (ReLU MLP, Adam lr 1e-3, float32, the same MNIST batches from TWINNET_DATA:
one fixed shuffle of the first 20,000 training images, then consecutive slices):

- **twinnet loop**: the README's engine loop exactly as it is written there
  (``loss_fn(model(x), y); opt.zero_grad(); model.backward(loss_fn.backward(),
  input_grad=False); opt.step()``), with numba installed;
- **Trainer.fit**: ``Trainer(model, loss, opt).fit(...)`` one epoch of N steps at a time
  (shuffle off, so its batches are the others'), samples/s of training;
- the same two with ``TWINNET_FUSED=0`` (Adam as NumPy passes: twinnet without numba);
- **PyTorch**: a plain torch loop (2.13 CPU, its default threads and Adam);
- **NumPy loop**: the ~40-line loop below (``numpy_loop``), nothing clever;
- **products**: only the matrix products a step needs (3 per layer, minus the data's
  gradient: 8 for three layers), and nothing else;
- **PyTorch products**: the same products through ``torch.matmul`` (torch's BLAS, MKL in
  its CPU wheels), nothing else. ``products / PyTorch`` is the most any loop whose
  products go through NumPy's BLAS (OpenBLAS in its wheels) can get against PyTorch:
  where it is below a target, no NumPy loop reaches that target on this machine;
- **roofline**: the products plus one fused optimiser pass over parameters, gradients
  and both moments (read 4, write 3 arrays of P float32) at this machine's memory
  bandwidth, measured in the products' process (a large-array copy, STREAM's count).

Each contender is a long-lived worker process (PyTorch's and OpenBLAS's thread pools
never share one), driven over stdin/stdout. A round asks every worker, in a new random
order, to time the same model and batch size (after a 0.2 s pause, so that the previous
worker's spinning threads go to sleep, and a few untimed steps). Samples/s are medians
over rounds; a ratio is the median of the ratios within each round (contenders seconds
apart) with its interquartile range, because the machine's speed drifts far more
between rounds than within one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = {
    "seed 784-512-256-10": [784, 512, 256, 10],
    "wide 784-4096-10": [784, 4096, 10],
    "deep 784-256x9-10": [784] + [256] * 9 + [10],
}
BATCHES = (32, 128, 1024)
N_SAMPLES = 20000
NO_NUMBA = {"TWINNET_FUSED": "0"}  # fused.py's switch: Adam's NumPy passes, numba never imported
# name -> (worker kind, extra environment)
CONTENDERS = {
    "twinnet loop": ("twinnet", {}),
    "Trainer.fit": ("fit", {}),
    "twinnet loop (no numba)": ("twinnet", NO_NUMBA),
    "Trainer.fit (no numba)": ("fit", NO_NUMBA),
    "PyTorch": ("torch", {}),
    "NumPy loop": ("numpy", {}),
    "products": ("products", {}),
    "PyTorch products": ("torch_products", {}),
}
MARKERS = {  # the README sections this script writes, each between its two markers
    "table": ("<!-- benchmarks/user_loop.py: begin -->", "<!-- benchmarks/user_loop.py: end -->"),
    "cost": ("<!-- benchmarks/user_loop.py --cost: begin -->", "<!-- benchmarks/user_loop.py --cost: end -->"),
}


# -- the data: the same batches for everyone ------------------------------------------------
def load_data(n: int = N_SAMPLES):
    """The first ``n`` MNIST training images, shuffled once (seed 0); random data of that
    shape when MNIST is not found (TWINNET_DATA), so that --quick runs anywhere."""
    try:
        from twinnet import data

        s = data.load("mnist", download=False)
        x, y = s.train.x[:n], s.train.y[:n].astype(np.int64)
    except Exception:  # noqa: BLE001 - speed does not depend on the pixels
        rng = np.random.default_rng(0)
        x, y = rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)
    perm = np.random.default_rng(0).permutation(len(x))
    return np.ascontiguousarray(x[perm]), np.ascontiguousarray(y[perm])


def batches(x, y, batch):
    """Consecutive slices of the shuffled data, round and round (views, no copies)."""
    n = len(x) - len(x) % batch
    i = 0
    while True:
        yield x[i : i + batch], y[i : i + batch]
        i = (i + batch) % n


# -- the contenders: each returns run(steps) ---------------------------------------------------
def twinnet_loop(layers, x, y, batch):
    from twinnet import losses, nn, optim

    mods = []
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        mods += [nn.Linear(a, b, rng=i)] + ([nn.ReLU()] if i < len(layers) - 2 else [])
    model = nn.Sequential(*mods)
    loss_fn = losses.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    data = batches(x, y, batch)

    def run(steps):
        for _ in range(steps):
            xb, yb = next(data)
            logits = model(xb)  # the README's engine loop, line for line
            loss = loss_fn(logits, yb)  # noqa: F841
            opt.zero_grad()
            model.backward(loss_fn.backward(), input_grad=False)
            opt.step()

    return run


def trainer_fit(layers, x, y, batch):
    from twinnet import losses, optim
    from twinnet.models import build_mlp
    from twinnet.train.trainer import Trainer

    model = build_mlp(layers, rng=0)
    trainer = Trainer(model, losses.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3))
    start = [0]

    def run(steps):
        n = steps * batch
        i = start[0] if start[0] + n <= len(x) else 0
        start[0] = i + n
        trainer.fit((x[i : i + n], y[i : i + n]), epochs=trainer.epoch + 1, batch_size=batch, shuffle=False)

    return run


def torch_loop(layers, x, y, batch):
    import torch

    torch.manual_seed(0)
    mods = []
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        mods += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(layers) - 2 else [])
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = batches(torch.from_numpy(x), torch.from_numpy(y), batch)

    def run(steps):
        for _ in range(steps):
            xb, yb = next(data)
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()

    return run


def numpy_loop(layers, x, y, batch, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """A plain NumPy MLP with Adam: what someone writes in an afternoon."""
    rng = np.random.default_rng(0)
    params = []
    for a, b in zip(layers[:-1], layers[1:], strict=True):
        bound = 1 / np.sqrt(a)
        params += [rng.uniform(-bound, bound, (b, a)).astype(np.float32),
                   rng.uniform(-bound, bound, b).astype(np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    data, t = batches(x, y, batch), [0]

    def step(xb, yb):
        hs = [xb]
        for i in range(0, len(params), 2):
            z = hs[-1] @ params[i].T + params[i + 1]
            hs.append(np.maximum(z, 0) if i + 2 < len(params) else z)
        e = np.exp(hs[-1] - hs[-1].max(axis=1, keepdims=True))
        g = e / e.sum(axis=1, keepdims=True)  # softmax; dL/dlogits = (p - onehot) / B
        g[np.arange(len(yb)), yb] -= 1
        g /= len(yb)
        grads = [None] * len(params)
        for i in range(len(params) - 2, -1, -2):
            grads[i], grads[i + 1] = g.T @ hs[i // 2], g.sum(axis=0)
            if i > 0:
                g = (g @ params[i]) * (hs[i // 2] > 0)
        t[0] += 1
        c1, c2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
        for p, gp, mp, vp in zip(params, grads, m, v, strict=True):
            mp *= b1
            mp += (1 - b1) * gp
            vp *= b2
            vp += (1 - b2) * gp * gp
            p -= (lr / c1) * mp / (np.sqrt(vp / c2) + eps)

    def run(steps):
        for _ in range(steps):
            step(*next(data))

    run.params = params  # for the test that checks that this loop learns
    return run


def products(layers, x, y, batch):
    """The matrix products of a step and nothing else: forward, weight gradients, and
    the input gradients of every layer but the first."""
    rng = np.random.default_rng(0)
    ws = [rng.normal(scale=0.05, size=(b, a)).astype(np.float32) for a, b in zip(layers[:-1], layers[1:], strict=True)]
    return products_run(ws, batches(x, y, batch))


def torch_products(layers, x, y, batch):
    """``products`` through torch's matmul: what its BLAS gives for the same shapes."""
    import torch

    gen = torch.Generator().manual_seed(0)  # plain tensors: no autograd graph is recorded
    ws = [torch.randn(b, a, generator=gen) * 0.05 for a, b in zip(layers[:-1], layers[1:], strict=True)]
    return products_run(ws, batches(torch.from_numpy(x), torch.from_numpy(y), batch))


def products_run(ws, data):
    """run(steps) of the products with weights ``ws`` on ``data``'s batches (NumPy arrays or
    torch tensors: ``@`` goes to that library's BLAS)."""

    def run(steps):
        for _ in range(steps):
            hs = [next(data)[0]]
            for w in ws:
                hs.append(hs[-1] @ w.T)
            g = hs[-1]
            for i in range(len(ws) - 1, -1, -1):
                g.T @ hs[i]
                if i > 0:
                    g = g @ ws[i]

    return run


KINDS = {"twinnet": twinnet_loop, "fit": trainer_fit, "torch": torch_loop, "numpy": numpy_loop,
         "products": products, "torch_products": torch_products}


def n_params(layers) -> int:
    return sum(a * b + b for a, b in zip(layers[:-1], layers[1:], strict=True))


def n_products(layers) -> int:
    return 3 * (len(layers) - 1) - 1


def bandwidth(mb: int = 64, repeats: int = 5) -> float:
    """Memory bandwidth in bytes/s: the best of a few copies of a ``mb`` MB float32 array
    (bytes read + bytes written, as STREAM counts them)."""
    src = np.ones(mb * 2**18, np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / best


def roofline(products_rate: float, batch: int, layers, bytes_per_s: float) -> float:
    """Samples/s of the products plus one fused optimiser pass: read w, g, m, v and write
    w, m, v, float32, at ``bytes_per_s``."""
    seconds = batch / products_rate + 7 * 4 * n_params(layers) / bytes_per_s
    return batch / seconds


def rss_mb(field: str = "VmHWM") -> float | None:
    """This process's peak (VmHWM) or current (VmRSS) resident memory in MB (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> None:
    """Linux: VmHWM := the current RSS (writing 5 to /proc/self/clear_refs); elsewhere nothing."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


# -- the worker process -------------------------------------------------------------------------
def worker(kind: str, n_samples: int) -> None:
    """Answer one JSON request per stdin line: {"layers", "batch", "steps"[, "bandwidth"]} ->
    {"rate": samples/s, "cpu_rate", "base_mb", "peak_mb"[, "bandwidth"]}. Models are kept
    between requests (warm, with their optimiser state). base_mb: resident memory before
    the first model was built (libraries and data); peak_mb: the process's peak so far."""
    import gc
    import importlib

    if kind != "products":  # the library in memory before "base" (torch alone is ~300 MB)
        importlib.import_module({"torch": "torch", "torch_products": "torch", "numpy": "numpy"}.get(kind, "twinnet.train.trainer"))
    x, y = load_data(n_samples)
    gc.collect()
    reset_peak_rss()  # forget the peak of reading all of MNIST to keep n_samples of it
    base = rss_mb("VmRSS")
    runs = {}
    for line in sys.stdin:
        req = json.loads(line)
        key = (tuple(req["layers"]), req["batch"])
        if key not in runs:
            runs[key] = KINDS[kind](req["layers"], x, y, req["batch"])
        run, steps = runs[key], req["steps"]
        run(max(1, steps // 10))  # warm: caches, threads, first-call allocations
        t, cpu = time.perf_counter(), time.process_time()
        run(steps)
        out = {"rate": steps * req["batch"] / (time.perf_counter() - t)}
        # samples per CPU-second of all this process's threads: what a step costs in work,
        # steadier than wall time on a shared machine (but spinning BLAS threads count)
        out["cpu_rate"] = steps * req["batch"] / max(time.process_time() - cpu, 1e-9)
        if kind == "products" and req.get("bandwidth"):
            out["bandwidth"] = bandwidth()
        out["base_mb"], out["peak_mb"] = base, rss_mb("VmHWM")
        print(json.dumps(out), flush=True)


class Worker:
    """A contender's process, alive for the whole benchmark."""

    def __init__(self, name: str, n_samples: int):
        kind, env = CONTENDERS[name]
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--samples", str(n_samples)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, **env})

    def ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args[3]} died (exit {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def ask_once(name: str, n_samples: int, req: dict) -> dict:
    """One request to a new worker process, closed afterwards."""
    w = Worker(name, n_samples)
    try:
        return w.ask(**req)
    finally:
        w.close()


def steps_for(layers, batch, budget: float) -> int:
    """Steps per timing: about ``budget`` flops (6 per weight per sample), 3 to 300."""
    return int(min(300, max(3, budget / (6 * batch * n_params(layers)))))


def measure(ask, names, configs, rounds, budget, pause=0.2, seed=0) -> dict:
    """{config: {name: [result per round]}}; ``ask(name, **request) -> result``. Every round
    visits the configurations in turn and, for each, the contenders in a new random order."""
    order = random.Random(seed)
    results = {c: {n: [] for n in names} for c in configs}
    for r in range(rounds):
        for c, (layers, batch) in configs.items():
            for name in order.sample(list(names), len(names)):
                time.sleep(pause)
                req = {"layers": layers, "batch": batch, "steps": steps_for(layers, batch, budget)}
                if name == "products" and batch == 32:
                    req["bandwidth"] = True
                results[c][name].append(ask(name, **req))
            rates = {n: round(v[-1]["rate"]) for n, v in results[c].items()}
            print(f"round {r + 1}/{rounds} {c}: {rates}", file=sys.stderr, flush=True)
    return results


def median_ratio(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """The median of the per-round ratios a[i] / b[i], and their quartiles."""
    ratios = [p / q for p, q in zip(a, b, strict=True)]
    q1, med, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
    return round(statistics.median(ratios), 2), round(q1, 2), round(q3, 2)


def summarise(per_round: dict, layers, batch) -> dict:
    """Median samples/s of each contender (and of the roofline, where the products'
    process measured the bandwidth), and every twinnet contender's ratios."""
    rates = {name: [r["rate"] for r in rs] for name, rs in per_round.items()}
    if "products" in per_round and all("bandwidth" in r for r in per_round["products"]):
        bw = [r["bandwidth"] for r in per_round["products"]]
        rates["roofline"] = [roofline(p, batch, layers, b) for p, b in zip(rates["products"], bw, strict=True)]
    row = {"rates": {n: round(statistics.median(r)) for n, r in rates.items()}, "ratios": {}}
    if "products" in per_round and "roofline" in rates:
        row["bandwidth_gb_s"] = round(statistics.median(bw) / 1e9, 1)
    for a, b in (("products", "PyTorch"), ("PyTorch products", "products")):
        if a in rates and b in rates:  # the ceiling: NumPy's products against PyTorch's step
            row["ratios"][f"{a} / {b}"] = median_ratio(rates[a], rates[b])
    cpu = {n: [r["cpu_rate"] for r in rs] for n, rs in per_round.items() if all("cpu_rate" in r for r in rs)}
    row["cpu_ratios"] = {}
    for ours in rates:
        if not ours.startswith(("twinnet", "Trainer")):
            continue
        for other in ("PyTorch", "products", "roofline", "NumPy loop"):
            if other in rates:
                row["ratios"][f"{ours} / {other}"] = median_ratio(rates[ours], rates[other])
            if ours in cpu and other in cpu:
                row["cpu_ratios"][f"{ours} / {other}"] = median_ratio(cpu[ours], cpu[other])
    return row


def ceiling_table(rows: dict) -> list[str]:
    """Markdown: NumPy's products against PyTorch's whole step and against torch's products."""
    lines = ["| model | batch | products (NumPy) | PyTorch products | PyTorch step "
             "| products / PyTorch step | PyTorch products / products |", "|---|---:|---:|---:|---:|---:|---:|"]
    for (model, batch), row in rows.items():
        rates = row["rates"]
        cells = [f"{rates[n]:,}" if n in rates else "-" for n in ("products", "PyTorch products", "PyTorch")]
        lines.append(f"| {model} | {batch} | " + " | ".join(cells) + " | "
                     + " | ".join(fmt_ratio(row["ratios"].get(p)) for p in
                                  ("products / PyTorch", "PyTorch products / products")) + " |")
    return lines


def cpu_table(rows: dict, pairs: list[str]) -> list[str]:
    """Markdown: ratios of samples per CPU-second (all threads of each process)."""
    lines = ["| model | batch | " + " | ".join(pairs) + " |", "|---|" + "---:|" * (len(pairs) + 1)]
    for (model, batch), row in rows.items():
        lines.append(f"| {model} | {batch} | " + " | ".join(fmt_ratio(row["cpu_ratios"].get(p)) for p in pairs) + " |")
    return lines


def fmt_ratio(r) -> str:
    return "-" if r is None else f"{r[0]} ({r[1]}-{r[2]})"


def table(rows: dict, ours: list[str], others: list[str]) -> list[str]:
    """Markdown: samples/s of ``ours`` and ``others``, then each of ours against PyTorch and
    against the products (at batch 32, where the roofline is measured, against the roofline)."""
    head = ["model", "batch", *ours, *others]
    for o in ours:
        head += [f"{o} / PyTorch", f"{o} / products (roofline at 32)"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for (model, batch), row in rows.items():
        rates = row["rates"]
        cells = [model, str(batch)] + [f"{rates[n]:,}" if n in rates else "-" for n in ours + others]
        for o in ours:
            floor = "roofline" if f"{o} / roofline" in row["ratios"] else "products"
            cells += [fmt_ratio(row["ratios"].get(f"{o} / PyTorch")), fmt_ratio(row["ratios"].get(f"{o} / {floor}"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# -- the cost curve ---------------------------------------------------------------------------
COST_WIDTHS = (256, 512, 1024, 2048, 4096, 8192)
COST_DEPTHS = (2, 4, 8, 16)


def cost_configs(widths=COST_WIDTHS, depths=COST_DEPTHS, batch=128) -> dict:
    """784-W-10 for each width W, and 784-256x(D-1)-10 (D linear layers) for each depth D."""
    configs = {f"width {w}": ([784, w, 10], batch) for w in widths}
    configs.update({f"depth {d}": ([784] + [256] * (d - 1) + [10], batch) for d in depths})
    return configs


def cost_table(results: dict, configs: dict) -> list[str]:
    lines = ["| model | params | twinnet samples/s | PyTorch samples/s | twinnet / PyTorch "
             "| twinnet peak RSS | PyTorch peak RSS | twinnet above start | PyTorch above start |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c, (layers, _) in configs.items():
        ours, theirs = results[c]["twinnet loop"], results[c]["PyTorch"]
        rate = [statistics.median(r["rate"] for r in rs) for rs in (ours, theirs)]
        peak = [statistics.median(r.get("peak_mb") or 0 for r in rs) for rs in (ours, theirs)]
        grow = [statistics.median((r.get("peak_mb") or 0) - (r.get("base_mb") or 0) for r in rs) for rs in (ours, theirs)]
        ratio = median_ratio([r["rate"] for r in ours], [r["rate"] for r in theirs])
        lines.append(f"| {c}: {'-'.join(map(str, layers)) if len(layers) < 6 else f'784-256x{len(layers) - 2}-10'} "
                     f"| {n_params(layers):,} | {rate[0]:,.0f} | {rate[1]:,.0f} | {fmt_ratio(ratio)} "
                     f"| {peak[0]:.0f} MB | {peak[1]:.0f} MB | {grow[0]:.0f} MB | {grow[1]:.0f} MB |")
    return lines


# -- main -------------------------------------------------------------------------------------
def machine() -> str:
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    torch_v = ""
    try:
        import torch

        blas = "MKL" if torch.backends.mkl.is_available() else "its BLAS"
        torch_v = f", torch {torch.__version__} ({blas}, {torch.get_num_threads()} threads)"
    except ImportError:
        pass
    return (f"{cpu_model() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"NumPy {np.__version__} ({numpy_blas()}){torch_v}; load average {load:.1f} when the run began")


def cpu_model() -> str | None:
    """The processor's name (Linux), which decides which BLAS kernels run."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def numpy_blas() -> str:
    """NumPy's BLAS with its kernel family and threads, e.g. 'openblas 0.3.31 SkylakeX, 2 threads'."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS unknown: threadpoolctl not installed"
    for lib in threadpool_info():
        if lib.get("user_api") == "blas" and "numpy" in lib.get("filepath", ""):
            return f"{lib['internal_api']} {lib['version']} {lib.get('architecture', '')}, {lib['num_threads']} threads"
    return "BLAS unknown"


def write_readme(section: list[str], kind: str = "table", readme: Path = HERE / "README.md") -> None:
    """Put the section between its markers (``MARKERS[kind]``) in the README, replacing the
    old one; written atomically."""
    begin, end = MARKERS[kind]
    old = readme.read_text() if readme.exists() else "# Benchmarks\n"
    block = "\n".join([begin, *section, end])
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(new)
    tmp.replace(readme)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny models and timings, 2 rounds, printed only")
    ap.add_argument("--no-numba", action="store_true", help="twinnet without numba only")
    ap.add_argument("--cost", action="store_true", help="the cost curve (width 256-8192, depth 2-16)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 5; cost curve 3)")
    ap.add_argument("--budget", type=float, default=2e9,
                    help="floating-point operations per timing (default 2e9: 0.05-0.5 s on a quiet 2-core machine)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads of every contender (OpenBLAS, OpenMP, torch); default: theirs (2 here)")
    ap.add_argument("--worker", choices=sorted(KINDS), help=argparse.SUPPRESS)
    ap.add_argument("--samples", type=int, default=N_SAMPLES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.samples)
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: its column stays empty", file=sys.stderr)
    has_torch = "torch" in sys.modules
    if args.cost:
        names = ["twinnet loop", "PyTorch"] if has_torch else ["twinnet loop"]
        configs = cost_configs((256, 512), (2, 3), batch=32) if args.quick else cost_configs()
    else:
        names = [n for n in CONTENDERS if has_torch or not n.startswith("PyTorch")]
        if args.no_numba:
            names = [n for n in names if n not in ("twinnet loop", "Trainer.fit")]
        models = {"tiny 784-32-10": [784, 32, 10]} if args.quick else MODELS
        configs = {(m, b): (layers, b) for m, layers in models.items() for b in ((8, 32) if args.quick else BATCHES)}
    rounds = args.rounds or (2 if args.quick else 3 if args.cost else 5)
    n_samples = 2048 if args.quick else N_SAMPLES
    budget = 1e7 if args.quick else args.budget
    header = machine()
    print(header, file=sys.stderr)
    if args.threads:  # read by OpenBLAS, numba and torch when each worker starts
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[var] = str(args.threads)
        header += f"; every contender limited to {args.threads} thread(s)"
    if args.cost:  # a new process for every model: its peak memory is that model's alone
        results = measure(lambda n, **req: ask_once(n, n_samples, req), names, configs, rounds, budget,
                          pause=0.0 if args.quick else 0.2)
    else:
        workers = {n: Worker(n, n_samples) for n in names}
        try:
            results = measure(lambda n, **req: workers[n].ask(**req), names, configs, rounds, budget,
                              pause=0.0 if args.quick else 0.2)
        finally:
            for w in workers.values():
                w.close()
    if args.cost:
        section = cost_section(results, configs, rounds, header)
    else:
        rows = {c: summarise(results[c], *configs[c]) for c in configs}
        section = main_section(rows, names, rounds, header)
    print("\n".join(section))
    if not args.quick and not args.no_numba and not args.threads:
        write_readme(section, "cost" if args.cost else "table")
    if not args.quick:
        stem = "user_loop_cost" if args.cost else "user_loop" + (f"_threads{args.threads}" if args.threads else "")
        (HERE / f"{stem}.json").write_text(
            json.dumps({"machine": header, "rounds": rounds, "results": {str(k): v for k, v in results.items()}}, indent=1))


def main_section(rows, names, rounds, header) -> list[str]:
    bw = next((r["bandwidth_gb_s"] for r in rows.values() if "bandwidth_gb_s" in r), None)
    return [
        "## The loop a user writes (`benchmarks/user_loop.py`)", "",
        f"Samples/s of training (medians over {rounds} rounds); each ratio is the median of the",
        "per-round ratios (interquartile range in brackets). Every contender in its own process;",
        "see the script's docstring for the contenders. Roofline: the products plus one fused",
        f"optimiser pass at the measured memory bandwidth ({bw} GB/s).", "",
        f"Machine: {header}.", "",
        *table(rows, [n for n in ("twinnet loop", "Trainer.fit") if n in names],
               [n for n in ("PyTorch", "NumPy loop", "products", "roofline") if n in names or n == "roofline"]), "",
        "The ceiling: a loop whose matrix products go through NumPy's BLAS is at most as fast as",
        "those products alone. Where `products / PyTorch step` is below a target, no NumPy loop",
        "reaches that target on this machine; `PyTorch products / products` is how much faster",
        "torch's BLAS runs the same products:", "",
        *ceiling_table(rows), "",
        "Without numba (`TWINNET_FUSED=0`: Adam's update as NumPy passes), the same rounds:", "",
        *table(rows, [n for n in ("twinnet loop (no numba)", "Trainer.fit (no numba)") if n in names], []), "",
        "Samples per CPU-second (user + system time of all the process's threads) instead of per",
        "second: the work a step costs, which a loaded machine disturbs less than wall time (a",
        "BLAS or OpenMP thread that spins while waiting counts as work here):", "",
        *cpu_table(rows, [f"{o} / {x}" for o in ("twinnet loop", "Trainer.fit") if o in names
                          for x in ("PyTorch", "products")]), "",
    ]


def cost_section(results, configs, rounds, header) -> list[str]:
    return [
        "### The cost curve (`benchmarks/user_loop.py --cost`)", "",
        f"The README's loop against a plain torch loop, batch 128, {rounds} rounds; each model trained",
        "in a new process (a worker that loads the libraries and the 20,000 images, then trains",
        "only that model): peak RSS is the process's VmHWM; 'above start' is the peak minus its",
        f"RSS before the model was built. Machine: {header}.", "",
        *cost_table(results, configs), "",
    ]


if __name__ == "__main__":
    main()
