"""PyTorch's answers for tests/nn/norm_test.ts and tests/nn/embedding_test.ts.

Reads {cases: [...], modules: [...]} (json_io) and answers {answers, modules}:
- a case {op: "layer_norm" | "group_norm", x: {shape, data}, arg (normalized shape or number of
  groups), weight, bias, eps, grad}: the output and the gradients of x, weight and bias when the
  output's gradient is `grad`; a case {op: "embedding", index: {shape, data}, weight: {shape,
  data}, paddingIdx, maxNorm?, normType?, grad}: the output, the weight's gradient and the weight
  after the call (max_norm scales rows in place) (float64 throughout);
- a module {kind: "LayerNorm" | "GroupNorm" | "Embedding", args, eps?, paddingIdx?, path, x}:
  the module built as torch.nn's, its state dict loaded (strict) from wgtorch's safetensors file
  at `path`, and its output on x (index data for Embedding).
"""
import torch
import torch.nn.functional as F
from torch import nn

from interop import load_file
from json_io import read_request, write_answer


def f64(spec):
    return torch.tensor(spec["data"], dtype=torch.float64).reshape(spec["shape"])


def run(case):
    grad = torch.tensor(case["grad"], dtype=torch.float64)
    if case["op"] == "embedding":
        index = torch.tensor(case["index"]["data"], dtype=torch.int64).reshape(case["index"]["shape"])
        weight = f64(case["weight"]).requires_grad_()
        out = F.embedding(index, weight, padding_idx=case["paddingIdx"],
                          max_norm=case.get("maxNorm"), norm_type=case.get("normType", 2.0))
        out.backward(grad.reshape(out.shape))
        return {"out": out.detach().flatten().tolist(), "grads": [weight.grad.flatten().tolist()],
                "weight": weight.detach().flatten().tolist()}
    x = f64(case["x"]).requires_grad_()
    if case["op"] == "layer_norm":
        shape = case["arg"]
    else:
        shape = [x.shape[1]]
    weight = torch.tensor(case["weight"], dtype=torch.float64).reshape(shape).requires_grad_()
    bias = torch.tensor(case["bias"], dtype=torch.float64).reshape(shape).requires_grad_()
    if case["op"] == "layer_norm":
        out = F.layer_norm(x, case["arg"], weight, bias, eps=case["eps"])
    else:
        out = F.group_norm(x, case["arg"], weight, bias, eps=case["eps"])
    out.backward(grad.reshape(out.shape))
    return {
        "out": out.detach().flatten().tolist(),
        "grads": [t.grad.flatten().tolist() for t in (x, weight, bias)],
    }


def run_module(spec):
    kind, args = spec["kind"], spec["args"]
    if kind == "LayerNorm":
        module = nn.LayerNorm(args[0], eps=spec["eps"])
    elif kind == "GroupNorm":
        module = nn.GroupNorm(args[0], args[1], eps=spec["eps"])
    elif kind == "Embedding":
        module = nn.Embedding(args[0], args[1], padding_idx=spec.get("paddingIdx"))
    else:
        raise ValueError(kind)
    module.load_state_dict(load_file(spec["path"]), strict=True)
    if kind == "Embedding":
        x = torch.tensor(spec["x"]["data"], dtype=torch.int64).reshape(spec["x"]["shape"])
    else:
        x = torch.tensor(spec["x"]["data"], dtype=torch.float32).reshape(spec["x"]["shape"])
    with torch.no_grad():
        return {"out": module(x).flatten().tolist()}


request = read_request()
write_answer({
    "answers": [run(case) for case in request["cases"]],
    "modules": [run_module(spec) for spec in request["modules"]],
})
