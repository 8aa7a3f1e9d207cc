"""PyTorch's answers for tests/nn/conv_torch_test.ts: reads {cases: [{layer, args, options,
input: {data, shape}, weight: {data, shape}, bias: {data, shape} | null, grad: {data, shape}}]},
builds the layer (Conv2d, Conv1d or ConvTranspose2d) with those parameters (float64), and
answers per case the output's shape and values and the input, weight and bias gradients when
the output's gradient is `grad`."""
import torch

from json_io import read_request, write_answer

LAYERS = {
    "Conv2d": torch.nn.Conv2d,
    "Conv1d": torch.nn.Conv1d,
    "ConvTranspose2d": torch.nn.ConvTranspose2d,
}
# wgtorch's option names, PyTorch's keyword arguments.
NAMES = {"outputPadding": "output_padding", "paddingMode": "padding_mode"}


def tensor(spec):
    return torch.tensor(spec["data"], dtype=torch.float64).reshape(spec["shape"])


def option(value):
    return tuple(value) if isinstance(value, list) else value


def run(case):
    kwargs = {NAMES.get(k, k): option(v) for k, v in case["options"].items()}
    layer = LAYERS[case["layer"]](*case["args"], bias=case["bias"] is not None, **kwargs).double()
    with torch.no_grad():
        layer.weight.copy_(tensor(case["weight"]))
        if case["bias"] is not None:
            layer.bias.copy_(tensor(case["bias"]))
    x = tensor(case["input"]).requires_grad_()
    out = layer(x)
    out.backward(tensor(case["grad"]).reshape(out.shape))
    return {
        "shape": list(out.shape),
        "values": out.detach().flatten().tolist(),
        "input": x.grad.flatten().tolist(),
        "weight": layer.weight.grad.flatten().tolist(),
        "bias": None if layer.bias is None else layer.bias.grad.flatten().tolist(),
    }


write_answer({"answers": [run(case) for case in read_request()["cases"]]})
