"""PyTorch side of tests/pytorch_interop_test.ts.

Defines the study's four models as PyTorch modules with the same parameter names as wgtorch's,
and moves weights through safetensors files in both directions:

  interop.py load MODEL L1 WEIGHTS INPUT OUTPUT  # load wgtorch's file, write eval log-probs
  interop.py save MODEL L1 WEIGHTS INPUT OUTPUT  # save a PyTorch model, write its eval log-probs
  interop.py adam MODEL L1 WEIGHTS INPUT OUTPUT  # load, take Adam steps on INPUT, save OUTPUT
  interop.py sgd MODEL L1 WEIGHTS INPUT OUTPUT   # the same with SGD (lr 0.05, momentum 0.9)

Uses the `safetensors` package when it is installed; otherwise the same format, read and written
by the few lines below (the format: an 8-byte little-endian header length, a JSON header of
dtype / shape / data_offsets per tensor, then the raw little-endian data).
"""
import json
import struct
import sys

import torch
from torch import nn

DTYPES = {"F32": torch.float32, "I64": torch.int64}


def load_file(path):
    try:
        from safetensors.torch import load_file as official
        return official(path)
    except ImportError:
        pass
    data = open(path, "rb").read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = bytearray(data[8 + length + begin:8 + length + end])
        out[name] = torch.frombuffer(raw, dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).clone()
    return out


def save_file(tensors, path, metadata):
    try:
        from safetensors.torch import save_file as official
        return official(tensors, path, metadata=metadata)
    except ImportError:
        pass
    names = sorted(tensors)
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name in names:
        t = tensors[name].contiguous()
        raw = t.numpy().tobytes()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.2)

    def forward(self, x):
        x = self.dropout(torch.relu(self.fc1(x.flatten(1))))
        x = self.dropout(torch.relu(self.fc2(x)))
        return torch.log_softmax(self.fc3(x), dim=1)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(1, 10, 5), nn.Conv2d(10, 20, 5), nn.Linear(320, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return torch.log_softmax(self.fc(x.flatten(1)), dim=1)


class CNNBN(nn.Module):
    def __init__(self, l1=None):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 10, 5), nn.BatchNorm2d(10)
        self.conv2, self.bn2 = nn.Conv2d(10, 20, 5), nn.BatchNorm2d(20)
        if l1 is None:
            self.fc = nn.Linear(320, 10)
        else:  # the tuning CNN: two linear layers, no activation between (as the study's notebook)
            self.fc1, self.fc2 = nn.Linear(320, l1), nn.Linear(l1, 10)
        self.l1 = l1

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2).flatten(1)
        x = self.fc(x) if self.l1 is None else self.fc2(self.fc1(x))
        return torch.log_softmax(x, dim=1)


def build(name, l1):
    return {"mlp": MLP, "cnn": CNN, "cnn-bn": CNNBN}[name]() if name != "tuning-cnn" else CNNBN(l1)


def main():
    mode, name, l1, weights, inputs, output = sys.argv[1:]
    torch.manual_seed(7)
    model = build(name, int(l1))
    if mode in ("adam", "sgd"):
        # INPUT holds STEPS batches of 16 images followed by their 16 labels (as float32).
        model.load_state_dict(load_file(weights), strict=True)
        data = torch.frombuffer(bytearray(open(inputs, "rb").read()), dtype=torch.float32)
        steps = data.numel() // (16 * 785)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01) if mode == "adam" else \
            torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        # MLP: eval mode (no dropout, so both sides compute the same); the CNNs: training mode.
        model.train(name != "mlp")
        for step in range(steps):
            chunk = data[step * 16 * 785:(step + 1) * 16 * 785]
            x, y = chunk[:16 * 784].reshape(16, 1, 28, 28), chunk[16 * 784:].long()
            optimizer.zero_grad()
            nn.functional.nll_loss(model(x), y).backward()
            optimizer.step()
        save_file(model.state_dict(), output, {"model": name})
        return
    x = torch.frombuffer(bytearray(open(inputs, "rb").read()), dtype=torch.float32).reshape(-1, 1, 28, 28)
    if mode == "load":
        model.load_state_dict(load_file(weights), strict=True)
    else:
        # Move the batch-norm running statistics away from their initial values first.
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(x * 2 + 0.1)
        save_file(model.state_dict(), weights, {"model": name, "written_by": "PyTorch " + torch.__version__})
    model.eval()
    with torch.no_grad():
        open(output, "wb").write(model(x).numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    main()
