"""PyTorch's answers for tests/nn/containers_test.ts and tests/nn/activations_test.ts.

Reads one of:
- {"structure": spec}: builds the module `spec` describes and answers {"keys": state_dict keys,
  "shapes": their shapes}. A spec is ["linear", in, out], ["conv2d", in, out, k],
  ["batchnorm2d", c], ["relu"], ["sequential", [spec, ...]], ["list", [spec, ...]] (ModuleList),
  ["dict", [[key, spec], ...]] (ModuleDict) or ["module", [[attribute, spec], ...]] (a Module with
  those attributes, in order);
- {"activations": {"x": values, "shape": shape, "grad": values, "cases": [{"name", "module"}]}}:
  for each case, applies `module` (Python: a torch.nn module, or "maxout(pieces, dim)") to x in
  float32, backpropagates `grad`, and answers {name: {"values", "shape", "grad"}}."""
import torch
from torch import nn

from json_io import read_request, write_answer

torch.set_num_threads(1)


def build(spec):
    kind, *args = spec
    if kind == "linear":
        return nn.Linear(*args)
    if kind == "conv2d":
        return nn.Conv2d(*args)
    if kind == "batchnorm2d":
        return nn.BatchNorm2d(*args)
    if kind == "relu":
        return nn.ReLU()
    if kind == "sequential":
        return nn.Sequential(*[build(s) for s in args[0]])
    if kind == "list":
        return nn.ModuleList([build(s) for s in args[0]])
    if kind == "dict":
        return nn.ModuleDict([(key, build(s)) for key, s in args[0]])
    if kind == "module":
        module = nn.Module()
        for name, s in args[0]:
            setattr(module, name, build(s))
        return module
    raise ValueError(f"unknown spec {kind}")


class Maxout(nn.Module):
    """The max over groups of `pieces` consecutive entries of `dim`."""

    def __init__(self, pieces, dim=1):
        super().__init__()
        self.pieces, self.dim = pieces, dim

    def forward(self, x):
        dim = self.dim % x.dim()
        shape = list(x.shape)
        grouped = shape[:dim] + [shape[dim] // self.pieces, self.pieces] + shape[dim + 1:]
        return x.reshape(grouped).max(dim + 1).values


request = read_request()
if "structure" in request:
    state = build(request["structure"]).state_dict()
    write_answer({"keys": list(state.keys()), "shapes": [list(t.shape) for t in state.values()]})
else:
    spec = request["activations"]
    answer = {}
    for case in spec["cases"]:
        x = torch.tensor(spec["x"], dtype=torch.float32).reshape(spec["shape"]).requires_grad_()
        module = eval(case["module"], {"nn": nn, "maxout": Maxout})  # the test's own expressions
        out = module(x)
        out.backward(torch.tensor(spec["grad"][:out.numel()], dtype=torch.float32).reshape(out.shape))
        answer[case["name"]] = {
            "values": out.detach().flatten().tolist(),
            "shape": list(out.shape),
            "grad": x.grad.flatten().tolist(),
        }
    write_answer(answer)
