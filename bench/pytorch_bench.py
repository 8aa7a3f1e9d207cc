"""PyTorch CPU side of `deno task bench`: the same rows as wgtorch's, timed the same way.

Training: the study's models, Adam (lr 0.01), NLL loss, random inputs in [0, 1) and labels
i % 10; warm-up steps, then timed windows of about `target_ms` each, images per second as the
median over the windows. Evaluation: forward only in eval mode under torch.no_grad().

Usage: python3 pytorch_bench.py '{"rows": [{"kind": "train", "model": "cnn", "batch": 32}, ...],
"windows": 5, "threads": 2}'  -- prints one JSON object on stdout. With `"device": "cuda"` the
rows run on the GPU instead (each window starts and ends with `torch.cuda.synchronize()`, as
wgtorch's end in a GPU sync), for a comparison on a machine that has one.

Or `python3 pytorch_bench.py --serve THREADS`: one JSON command per stdin line, one JSON answer
per stdout line, so that the bench can alternate PyTorch's timed windows with wgtorch's (this
machine's speed drifts by tens of percent within a minute):
  {"op": "info"}  -> {"torch", "threads", "blas"}
  {"op": "setup", "kind": "train", "model": "cnn", "batch": 32}  -> {"steps"}: builds the row,
      warms it up and sizes its windows as `time_steps` does
  {"op": "window"}  -> {"imagesPerSecond", "cpuMsPerStep"}: one timed window of the row
"""

import json
import os
import re
import sys
import time

import torch
from torch import nn


def mlp():
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10), nn.LogSoftmax(dim=1))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 10, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(10, 20, 5), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(320, 10), nn.LogSoftmax(dim=1))


def cnn_bn():
    return nn.Sequential(
        nn.Conv2d(1, 10, 5), nn.BatchNorm2d(10), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(10, 20, 5), nn.BatchNorm2d(20), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(320, 10), nn.LogSoftmax(dim=1))


MODELS = {"mlp": mlp, "cnn": cnn, "cnn-bn": cnn_bn}

DEVICE = torch.device("cpu")


def sync():
    """Waits for queued GPU work (a no-op on the CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def window_steps(step, warmup, target_ms):
    """Warms `step` up and returns the steps of a window of about `target_ms` (as bench/mod.ts)."""
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    step()
    sync()
    once_ms = (time.perf_counter() - t0) * 1000
    return max(2, min(500, round(target_ms / max(once_ms, 1e-3))))


def window(step, batch, steps):
    """One timed window: (images per second, process CPU ms per step)."""
    sync()
    c0 = time.process_time()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - start
    return batch * steps / seconds, (time.process_time() - c0) * 1000 / steps


def time_steps(step, batch, warmup, windows, target_ms):
    """Images per second: median of `windows` windows, after `warmup` steps (as bench/mod.ts)."""
    steps = window_steps(step, warmup, target_ms)
    rates = []
    cpu_ms = 0.0
    for _ in range(windows):
        rate, cpu = window(step, batch, steps)
        cpu_ms += cpu
        rates.append(rate)
    rates_sorted = sorted(rates)
    mid = len(rates_sorted) // 2
    median = rates_sorted[mid] if len(rates_sorted) % 2 else (
        rates_sorted[mid - 1] + rates_sorted[mid]) / 2
    return {"imagesPerSecond": median, "windows": rates, "cpuMsPerStep": cpu_ms / windows}


def train_step(name, batch):
    """A training step of the model (Adam, NLL), with its warm-up steps and window length."""
    torch.manual_seed(0)
    model = MODELS[name]().to(DEVICE).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.rand(batch, 1, 28, 28, device=DEVICE)
    y = torch.arange(batch, device=DEVICE) % 10
    loss_fn = nn.NLLLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step, 3, 1500


def eval_step(name, batch):
    """An evaluation forward of the model, with its warm-up steps and window length."""
    torch.manual_seed(0)
    model = MODELS[name]().to(DEVICE).eval()
    x = torch.rand(batch, 1, 28, 28, device=DEVICE)

    def step():
        with torch.no_grad():
            model(x)

    return step, 2, 1000


def row_step(row):
    return (train_step if row["kind"] == "train" else eval_step)(row["model"], int(row["batch"]))


def blas_library():
    """The BLAS shared library this process actually loaded (after a matmul), e.g. OpenBLAS."""
    torch.mm(torch.rand(64, 64), torch.rand(64, 64))
    found = set()
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path)
                if re.search(r"(openblas|libblas|mkl|blis|atlas)", name, re.IGNORECASE):
                    found.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(found)


def main():
    global DEVICE
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(int(spec["threads"]))
    DEVICE = torch.device(spec.get("device", "cpu"))
    rows = []
    for row in spec["rows"]:
        step, warmup, target_ms = row_step(row)
        rows.append({"what": f"{row['kind']} {row['model']} batch {row['batch']}",
                     **time_steps(step, int(row["batch"]), warmup, spec["windows"], target_ms)})
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas_library(),
        "device": torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu",
        "rows": rows,
    }))


def serve(threads):
    """Answers the bench's commands, one JSON line each way (see the module docstring)."""
    torch.set_num_threads(threads)
    current = None
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "info":
            answer = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": blas_library()}
        elif command["op"] == "setup":
            step, warmup, target_ms = row_step(command)
            current = (step, int(command["batch"]), window_steps(step, warmup, target_ms))
            answer = {"steps": current[2]}
        else:
            rate, cpu = window(*current)
            answer = {"imagesPerSecond": rate, "cpuMsPerStep": cpu}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
    else:
        main()
