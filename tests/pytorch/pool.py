"""PyTorch's answers for tests/nn/pool_test.ts: reads {cases: [{op, shape, data, options, grad}]}
and answers, per case, the output's shape and values and the input's gradient when the output's
gradient is `grad` (float64). `op` is max_pool2d, avg_pool2d, adaptive_avg_pool2d or dropout2d;
`options` are the camelCase options of the wgtorch op."""
import torch
import torch.nn.functional as F

from json_io import read_request, write_answer


def size(value):
    return tuple(value) if isinstance(value, list) else value


def run(case):
    x = torch.tensor(case["data"], dtype=torch.float64).reshape(case["shape"]).requires_grad_()
    o = case["options"]
    op = case["op"]
    if op == "max_pool2d":
        out = F.max_pool2d(x, size(o["kernelSize"]), stride=size(o.get("stride")),
                           padding=size(o.get("padding", 0)), dilation=size(o.get("dilation", 1)),
                           ceil_mode=o.get("ceilMode", False))
    elif op == "avg_pool2d":
        out = F.avg_pool2d(x, size(o["kernelSize"]), stride=size(o.get("stride")),
                           padding=size(o.get("padding", 0)), ceil_mode=o.get("ceilMode", False),
                           count_include_pad=o.get("countIncludePad", True),
                           divisor_override=o.get("divisorOverride"))
    elif op == "adaptive_avg_pool2d":
        out = F.adaptive_avg_pool2d(x, size(o["outputSize"]))
    elif op == "dropout2d":
        out = F.dropout2d(x, p=o["p"], training=o["training"])
    else:
        raise ValueError(op)
    out.backward(torch.tensor(case["grad"], dtype=torch.float64).reshape(out.shape))
    return {
        "shape": list(out.shape),
        "values": out.detach().flatten().tolist(),
        "grad": x.grad.flatten().tolist(),
    }


torch.manual_seed(0)
write_answer({"answers": [run(case) for case in read_request()["cases"]]})
