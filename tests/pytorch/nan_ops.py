"""PyTorch's answers for tests/nan_test.ts: reads JSON {x, shape, grad_pool, grad_bn} on stdin
(NaN as null) and prints relu, max_pool2d (values, indices, gradient) and training-mode
batch_norm (values, running statistics, gradients) of x, NaN as null."""
import json
import math
import sys

import torch


def tensor(values, shape):
    return torch.tensor([math.nan if v is None else v for v in values],
                        dtype=torch.float64).reshape(shape)


def plain(t):
    return [None if math.isnan(v) else v for v in t.detach().flatten().tolist()]


request = json.load(sys.stdin)
shape = request["shape"]
x = tensor(request["x"], shape).requires_grad_()
pooled, indices = torch.nn.functional.max_pool2d(x, 2, return_indices=True)
pooled.backward(tensor(request["grad_pool"], pooled.shape))
pool_grad = x.grad.clone()
x.grad = None
bn = torch.nn.BatchNorm2d(shape[1]).double()
normalised = bn(x)
normalised.backward(tensor(request["grad_bn"], shape))
json.dump({
    "relu": plain(torch.relu(x)),
    "pool": plain(pooled),
    "pool_indices": indices.flatten().tolist(),
    "pool_grad": plain(pool_grad),
    "bn": plain(normalised),
    "bn_running_mean": plain(bn.running_mean),
    "bn_running_var": plain(bn.running_var),
    "bn_grad": plain(x.grad),
    "bn_weight_grad": plain(bn.weight.grad),
    "bn_bias_grad": plain(bn.bias.grad),
}, sys.stdout)
