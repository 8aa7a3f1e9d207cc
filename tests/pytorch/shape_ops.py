"""PyTorch's answers for tests/nn/shape_test.ts: reads {cases: [{op, inputs: [{data, shape}],
args, grad}]} and answers, per case, the output's shape and values and each input's gradient
when the output's gradient is `grad` (float64)."""
import torch
import torch.nn.functional as F

from json_io import read_request, write_answer


def run(case):
    xs = [torch.tensor(i["data"], dtype=torch.float64).reshape(i["shape"]).requires_grad_()
          for i in case["inputs"]]
    a = case["args"]
    op = case["op"]
    if op == "permute":
        out = xs[0].permute(*a["dims"])
    elif op == "transpose":
        out = xs[0].transpose(a["dim0"], a["dim1"])
    elif op == "expand":
        out = xs[0].expand(*a["shape"])
    elif op == "narrow":
        out = xs[0].narrow(a["dim"], a["start"], a["length"])
    elif op == "pad":
        out = F.pad(xs[0], a["pads"], value=a["value"])
    elif op == "cat":
        out = torch.cat(xs, dim=a["dim"])
    elif op == "stack":
        out = torch.stack(xs, dim=a["dim"])
    elif op == "split":
        out = torch.split(xs[0], a["sizes"], dim=a["dim"])[a["index"]]
    elif op == "flatten":
        out = torch.flatten(xs[0], a["startDim"], a["endDim"])
    elif op == "squeeze":
        out = xs[0].squeeze() if a.get("dim") is None else xs[0].squeeze(a["dim"])
    elif op == "unsqueeze":
        out = xs[0].unsqueeze(a["dim"])
    elif op == "reshape":
        out = xs[0].reshape(a["shape"])
    else:
        raise ValueError(op)
    out.backward(torch.tensor(case["grad"], dtype=torch.float64).reshape(out.shape))
    return {
        "shape": list(out.shape),
        "values": out.detach().flatten().tolist(),
        "grads": [x.grad.flatten().tolist() for x in xs],
    }


write_answer({"answers": [run(case) for case in read_request()["cases"]]})
