"""PyTorch's answers for tests/nn/reduce_dim_test.ts: reads {cases: [{op, x, shape, dim, keepdim,
correction, grad}]} and, for each case, prints the float32 result of the op on x and (for the
differentiable ops) the gradient of sum(result * grad) with respect to x. `dim` is null for all
dimensions, a number, or a list."""
import torch

from json_io import read_request, write_answer


def apply(op, x, dim, keepdim, correction):
    every = tuple(range(x.dim())) if dim is None else dim
    if op in ("sum", "mean"):
        return getattr(torch, op)(x, dim=every, keepdim=keepdim)
    if op in ("max", "min"):
        if dim is None:
            return getattr(torch, op)(x)  # the all-elements form: ties share the gradient
        return getattr(torch, op)(x, dim=dim, keepdim=keepdim).values
    if op in ("argmax", "argmin"):
        return getattr(torch, op)(x, dim=dim, keepdim=keepdim)
    if op in ("var", "std"):
        return getattr(torch, op)(x, dim=every, keepdim=keepdim, correction=correction)
    if op == "logsumexp":
        return torch.logsumexp(x, dim=every, keepdim=keepdim)
    if op == "prod":
        return torch.prod(x) if dim is None else torch.prod(x, dim=dim, keepdim=keepdim)
    if op == "softmax":
        return torch.softmax(x, dim=dim)
    if op == "log_softmax":
        return torch.log_softmax(x, dim=dim)
    raise ValueError(f"unknown op {op}")


answers = []
for case in read_request()["cases"]:
    x = torch.tensor(case["x"], dtype=torch.float32).reshape(case["shape"])
    differentiable = case["op"] not in ("argmax", "argmin")
    x.requires_grad_(differentiable)
    out = apply(case["op"], x, case.get("dim"), case.get("keepdim", False),
                case.get("correction", 1))
    answer = {"shape": list(out.shape), "out": out.detach().flatten().tolist()}
    if differentiable:
        weights = torch.tensor(case["grad"], dtype=torch.float32).reshape(out.shape)
        (out * weights).sum().backward()
        answer["grad"] = x.grad.flatten().tolist()
    answers.append(answer)
write_answer({"answers": answers})
