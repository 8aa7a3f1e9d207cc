"""PyTorch's answers for tests/nn/max_unpool_test.ts: reads {cases: [{shape, data, options,
grad, unpoolGrad, outputSize}]} and answers, per case, max_pool2d's output, indices and input
gradient (return_indices=True), then max_unpool2d of that output at those indices: its values and
the gradient of the pooled input when the unpooled output's gradient is `unpoolGrad`."""
import torch
import torch.nn.functional as F

from json_io import read_request, write_answer


def size(value):
    return tuple(value) if isinstance(value, list) else value


def run(case):
    o = case["options"]
    x = torch.tensor(case["data"], dtype=torch.float64).reshape(case["shape"]).requires_grad_()
    out, indices = F.max_pool2d(x, size(o["kernelSize"]), stride=size(o.get("stride")),
                                padding=size(o.get("padding", 0)),
                                dilation=size(o.get("dilation", 1)),
                                ceil_mode=o.get("ceilMode", False), return_indices=True)
    out.backward(torch.tensor(case["grad"], dtype=torch.float64).reshape(out.shape))
    pooled = out.detach().requires_grad_()
    unpooled = F.max_unpool2d(pooled, indices, size(o["kernelSize"]), stride=size(o.get("stride")),
                              padding=size(o.get("padding", 0)), output_size=case["outputSize"])
    unpooled.backward(torch.tensor(case["unpoolGrad"], dtype=torch.float64).reshape(unpooled.shape))
    return {
        "shape": list(out.shape),
        "values": out.detach().flatten().tolist(),
        "indices": indices.flatten().tolist(),
        "grad": x.grad.flatten().tolist(),
        "unpoolShape": list(unpooled.shape),
        "unpoolValues": unpooled.detach().flatten().tolist(),
        "unpoolGrad": pooled.grad.flatten().tolist(),
    }


write_answer({"answers": [run(case) for case in read_request()["cases"]]})
