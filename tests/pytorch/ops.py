"""PyTorch's answers for tests/nn/torch_ops_test.ts.

Reads {cases: [{name, inputs: [{values, shape, dtype, grad}], expr, out_grad}]} and, for each case,
evaluates `expr` (Python, with the inputs bound to x0, x1, ... and torch, F in scope) in float32,
backpropagates `out_grad` when some input needs a gradient, and answers
{name: {values, shape, dtype, grads: [list or None per input]}}."""
import torch
import torch.nn.functional as F

from json_io import read_request, write_answer

DTYPES = {"f32": torch.float32, "i32": torch.int32, "u8": torch.uint8}
NAMES = {torch.float32: "f32", torch.int32: "i32", torch.int64: "i32", torch.uint8: "u8",
         torch.bool: "u8"}

torch.set_num_threads(1)
answer = {}
for case in read_request()["cases"]:
    inputs = []
    for spec in case["inputs"]:
        t = torch.tensor(spec["values"], dtype=DTYPES[spec["dtype"]]).reshape(spec["shape"])
        if spec["grad"]:
            t.requires_grad_()
        inputs.append(t)
    scope = {"torch": torch, "F": F, **{f"x{k}": t for k, t in enumerate(inputs)}}
    out = eval(case["expr"], scope)  # the test's own expressions
    grads = [None] * len(inputs)
    if any(spec["grad"] for spec in case["inputs"]):
        out.backward(torch.tensor(case["out_grad"], dtype=out.dtype).reshape(out.shape))
        grads = [t.grad.flatten().tolist() if t.grad is not None else None for t in inputs]
    answer[case["name"]] = {
        "values": out.detach().flatten().to(torch.float64).tolist(),
        "shape": list(out.shape),
        "dtype": NAMES[out.dtype],
        "grads": grads,
    }
write_answer(answer)
