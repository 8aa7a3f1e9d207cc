"""PyTorch side of tests/nn/seq_torch_test.ts: LSTM, GRU, MultiheadAttention and
TransformerEncoderLayer (PyTorch 1.13) loaded with wgtorch's state dict, run on the same inputs;
backward with the given output gradients. Computed in float64 (the weights and inputs are
wgtorch's float32 values), so the answer is the exact value the float32 GPU result approximates.

Request (JSON on stdin): {"cases": [{"kind", "config", "state": {name: {"shape", "data"}},
"inputs": {name: {"shape", "data", "dtype"?}}, "grads": [flat output gradient per output]}]}.
Answer: {"cases": [{"outputs": [flat lists], "grads": {name: flat list}}]}: the gradients of every
float input and parameter. Or, for {"export": [{"kind", "config", "seed"}]}: {"states": [state dict
of each module as PyTorch initialises it]}, which wgtorch must load.
"""
import torch
from torch import nn

from json_io import read_request, write_answer

torch.set_default_dtype(torch.float64)


def tensor(spec):
    if spec.get("dtype") == "u8":
        return torch.tensor(spec["data"], dtype=torch.bool).reshape(spec["shape"])
    return torch.tensor(spec["data"], dtype=torch.float64).reshape(spec["shape"])


def build(kind, c):
    if kind == "lstm":
        return nn.LSTM(c["inputSize"], c["hiddenSize"], num_layers=c["numLayers"], bias=c["bias"],
                       batch_first=c["batchFirst"], bidirectional=c["bidirectional"])
    if kind == "gru":
        return nn.GRU(c["inputSize"], c["hiddenSize"], num_layers=c["numLayers"], bias=c["bias"],
                      batch_first=c["batchFirst"], bidirectional=c["bidirectional"])
    if kind == "mha":
        return nn.MultiheadAttention(c["embedDim"], c["numHeads"], bias=c["bias"],
                                     batch_first=c["batchFirst"], kdim=c["kdim"], vdim=c["vdim"])
    if kind == "encoder":
        return nn.TransformerEncoderLayer(c["dModel"], c["nhead"], dim_feedforward=c["ff"],
                                          dropout=0.0, activation=c["activation"],
                                          batch_first=c["batchFirst"], norm_first=c["normFirst"])
    raise ValueError(kind)


def run(case):
    c = case["config"]
    module = build(case["kind"], c)
    module.load_state_dict({k: tensor(v) for k, v in case["state"].items()})
    module.eval()
    inputs = {k: tensor(v) for k, v in case["inputs"].items()}
    for t in inputs.values():
        if t.dtype == torch.float64:
            t.requires_grad_(True)
    kind = case["kind"]
    if kind in ("lstm", "gru"):
        hx = None
        if "h0" in inputs:
            hx = (inputs["h0"], inputs["c0"]) if kind == "lstm" else inputs["h0"]
        out, state = module(inputs["x"], hx)
        outputs = [out, *state] if kind == "lstm" else [out, state]
    elif kind == "mha":
        out, weights = module(inputs["query"], inputs["key"], inputs["value"],
                              key_padding_mask=inputs.get("keyPaddingMask"),
                              attn_mask=inputs.get("attnMask"), need_weights=True,
                              average_attn_weights=c["average"])
        outputs = [out, weights]
    else:
        outputs = [module(inputs["x"], src_mask=inputs.get("srcMask"),
                          src_key_padding_mask=inputs.get("srcKeyPaddingMask"))]
    total = sum((o * torch.tensor(g).reshape(o.shape)).sum() for o, g in zip(outputs, case["grads"]))
    total.backward()
    grads = {k: t.grad.flatten().tolist() for k, t in inputs.items() if t.grad is not None}
    for name, p in module.named_parameters():
        grads[name] = p.grad.flatten().tolist()
    return {"outputs": [o.detach().flatten().tolist() for o in outputs], "grads": grads}


def export(case):
    """PyTorch's own initial weights of the case's module (seeded), for wgtorch to load."""
    torch.manual_seed(case["seed"])
    module = build(case["kind"], case["config"])
    return {name: {"shape": list(t.shape), "data": t.detach().flatten().tolist()}
            for name, t in module.state_dict().items()}


def main():
    request = read_request()
    if "export" in request:
        write_answer({"states": [export(case) for case in request["export"]]})
    else:
        write_answer({"cases": [run(case) for case in request["cases"]]})


if __name__ == "__main__":
    main()
