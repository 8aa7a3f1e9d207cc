"""PyTorch's answers for tests/nn/losses_torch_test.ts: reads {cases: [{loss, x, shape, target,
target_shape, target_dtype, weight, weight_shape, pos_weight, pos_weight_shape, options, grad,
target_grad}]} and, for each case, prints the float32 result of torch.nn.functional.<loss>
and the gradients of sum(result * grad) with respect to the input (and the target when
target_grad)."""
import torch
import torch.nn.functional as F

from json_io import read_request, write_answer


def tensor(values, shape, dtype="f32"):
    kind = torch.int64 if dtype == "i32" else torch.float32
    return torch.tensor(values, dtype=kind).reshape(shape)


answers = []
for case in read_request()["cases"]:
    x = tensor(case["x"], case["shape"]).requires_grad_(True)
    target = tensor(case["target"], case["target_shape"], case.get("target_dtype", "f32"))
    if case.get("target_grad"):
        target.requires_grad_(True)
    options = dict(case.get("options", {}))
    if case.get("weight") is not None:
        options["weight"] = tensor(case["weight"], case["weight_shape"])
    if case.get("pos_weight") is not None:
        options["pos_weight"] = tensor(case["pos_weight"], case["pos_weight_shape"])
    out = getattr(F, case["loss"])(x, target, **options)
    grad = tensor(case["grad"], list(out.shape))
    (out * grad).sum().backward()
    answer = {
        "shape": list(out.shape),
        "out": out.detach().flatten().tolist(),
        "x_grad": x.grad.flatten().tolist(),
    }
    if case.get("target_grad"):
        answer["target_grad"] = target.grad.flatten().tolist()
    answers.append(answer)
write_answer({"answers": answers})
