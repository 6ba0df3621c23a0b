"""Where the time of one training step goes: each layer's forward and backward, the
loss, zero_grad and the optimiser step, timed inside the training loop.

    python benchmarks/step_breakdown.py                  # seed MLP, batch 128
    python benchmarks/step_breakdown.py --batch 32 --numpy-only

The loop is Trainer.fit's (the first layer skips dL/d(data)); timing each part adds a
few microseconds per part. Milliseconds per step, mean over the timed steps.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="784,512,256,10")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=400, help="timed steps (after 50 warm-up steps)")
    ap.add_argument("--numpy-only", action="store_true", help="Adam's update as NumPy passes, as without numba")
    args = ap.parse_args()

    from throughput import mnist_like, twinnet_setup

    from twinnet.optim import fused

    if args.numpy_only:
        fused._adam_kernel = False
    layers = [int(n) for n in args.layers.split(",")]
    x, y, source = mnist_like(60000)
    model, loss_fn, opt, loader = twinnet_setup(layers, x, y, args.batch)  # as Trainer.fit trains

    seconds: dict[str, float] = {}

    def timed(part: str, fn, *a):
        t = time.perf_counter()
        out = fn(*a)
        seconds[part] = seconds.get(part, 0.0) + time.perf_counter() - t
        return out

    warmup, done, epoch = 50, 0, 0
    while done < warmup + args.steps:
        for xb, yb in loader.epoch(epoch):
            if done == warmup:
                seconds.clear()
            h = xb
            for i, m in enumerate(model):
                h = timed(f"{i} {type(m).__name__} forward", m, h)
            timed("loss forward", loss_fn, h, yb)
            timed("zero_grad", opt.zero_grad)
            g = timed("loss backward", loss_fn.backward)
            for i in reversed(range(len(model))):
                g = timed(f"{i} {type(model[i]).__name__} backward", model[i].backward, g)
            timed("optimiser step" + (" (NumPy)" if args.numpy_only else ""), opt.step)
            done += 1
            if done == warmup + args.steps:
                break
        epoch += 1

    total = sum(seconds.values())
    print(f"{'-'.join(map(str, layers))}, batch {args.batch}, {source}: {total / args.steps * 1e3:.2f} ms per step, "
          f"{args.steps * args.batch / total:,.0f} samples/s")
    for part, s in seconds.items():
        print(f"  {part:<28} {s / args.steps * 1e3:7.3f} ms  {s / total:6.1%}")


if __name__ == "__main__":
    main()
