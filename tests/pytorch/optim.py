"""PyTorch's answers for tests/train/optim_groups_test.ts and clip_grad_test.ts (float32, CPU).

Request (JSON on stdin, see tests/torch.ts), one of:
- {"kind": "optimizer", "optimizer": "SGD" | "Adam" | "AdamW" | "RMSprop" | "Adagrad",
   "defaults": {options in camelCase}, "groups": [{"params": [indices], ...options}],
   "params": [{"shape": [...], "data": [...]}], "grads": [[flat gradient or null per param]
   per step], "updates": [[{"group": g, ...options}] per step, applied before that step]}
  -> {"params": [[flat values per param] after each step]}
- {"kind": "clip_norm", "grads": [{"shape", "data"} or null], "max_norm": x, "norm_type": p}
  -> {"norm": total norm, "grads": [flat clipped gradient or null]}
- {"kind": "clip_value", "grads": [...], "clip_value": x} -> {"grads": [...]}
"""
import re

import torch

from json_io import read_request, write_answer

OPTIMIZERS = {
    "SGD": torch.optim.SGD,
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
    "RMSprop": torch.optim.RMSprop,
    "Adagrad": torch.optim.Adagrad,
}


def snake(options):
    """camelCase option names (wgtorch's) as PyTorch's snake_case; betas become tuples."""
    out = {}
    for key, value in options.items():
        name = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)
        out[name] = tuple(value) if name == "betas" else value
    return out


def tensor(item):
    return torch.tensor(item["data"], dtype=torch.float32).reshape(item["shape"])


def flat(t):
    return t.detach().flatten().tolist()


def run_optimizer(request):
    params = [tensor(p).requires_grad_() for p in request["params"]]
    groups = [dict(snake({k: v for k, v in g.items() if k != "params"}),
                   params=[params[i] for i in g["params"]]) for g in request["groups"]]
    optimizer = OPTIMIZERS[request["optimizer"]](groups, **snake(request["defaults"]))
    history = []
    updates = request.get("updates") or [[] for _ in request["grads"]]
    for grads, changes in zip(request["grads"], updates):
        for change in changes:
            group = optimizer.param_groups[change["group"]]
            group.update(snake({k: v for k, v in change.items() if k != "group"}))
        for param, grad in zip(params, grads):
            param.grad = None if grad is None else torch.tensor(
                grad, dtype=torch.float32).reshape(param.shape)
        optimizer.step()
        history.append([flat(p) for p in params])
    return {"params": history}


def with_grads(items):
    params = []
    for item in items:
        p = torch.zeros(1, requires_grad=True)
        if item is not None:
            p = torch.zeros(item["shape"], requires_grad=True)
            p.grad = tensor(item)
        params.append(p)
    return params


def answer(request):
    kind = request["kind"]
    if kind == "optimizer":
        return run_optimizer(request)
    params = with_grads(request["grads"])
    grads = lambda: [None if p.grad is None else flat(p.grad) for p in params]
    if kind == "clip_norm":
        norm = torch.nn.utils.clip_grad_norm_(params, request["max_norm"], request["norm_type"])
        return {"norm": norm.item(), "grads": grads()}
    if kind == "clip_value":
        torch.nn.utils.clip_grad_value_(params, request["clip_value"])
        return {"grads": grads()}
    raise ValueError(f"unknown kind {kind}")


write_answer(answer(read_request()))
