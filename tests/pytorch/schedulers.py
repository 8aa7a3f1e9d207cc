"""PyTorch's learning-rate curves for tests/train/scheduler_torch_test.ts.

Reads {"cases": [...]} on stdin (json_io). A case: {"kind": "StepLR", "lrs": [per group],
"optimizer": "sgd" | "adam", "options": {camelCase options}, "steps": n, "metrics": [...]
(ReduceLROnPlateau), "lambda": "python expression" (LambdaLR), "schedulers": [{"kind",
"options", "lambda"}], "milestones": [...] (SequentialLR); kind "Stacked": "schedulers" all made on the optimizer
and all stepped every epoch}. Answers per case "lrs": get_last_lr()
after construction and after each of the n steps, and "momentums": every group's momentum (or
betas[0]) at the same points."""
import re
import warnings

import torch
from torch.optim import lr_scheduler

from json_io import read_request, write_answer

warnings.simplefilter("ignore")

SPECIAL = {"tMax": "T_max"}


def snake(name):
    return SPECIAL.get(name) or re.sub("([A-Z])", r"_\1", name).lower()


def make_optimizer(case):
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in case["lrs"]]
    if case.get("optimizer", "sgd") == "adam":
        return torch.optim.Adam(groups, lr=case["lrs"][0])
    return torch.optim.SGD(groups, lr=case["lrs"][0], momentum=0.9)


def make_scheduler(optimizer, spec):
    kind = spec["kind"]
    options = {snake(k): v for k, v in spec.get("options", {}).items()}
    if "maxLrFactor" in spec:  # max_lr: each group's start lr times this
        options["max_lr"] = [g["lr"] * spec["maxLrFactor"] for g in optimizer.param_groups]
    if kind == "LambdaLR":
        options["lr_lambda"] = eval(spec["lambda"])  # the test's own expression
    if kind == "Stacked":  # several schedulers on one optimizer, all stepped every epoch
        return [make_scheduler(optimizer, s) for s in spec["schedulers"]]
    if kind == "SequentialLR":
        inner = [make_scheduler(optimizer, s) for s in spec["schedulers"]]
        return lr_scheduler.SequentialLR(optimizer, inner, milestones=spec["milestones"])
    return getattr(lr_scheduler, kind)(optimizer, **options)


def momentums(optimizer):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in optimizer.param_groups]


def run(case):
    optimizer = make_optimizer(case)
    scheduler = make_scheduler(optimizer, case)
    lrs = [[g["lr"] for g in optimizer.param_groups]]
    moms = [momentums(optimizer)]
    for i in range(case["steps"]):
        optimizer.step()
        if case["kind"] == "ReduceLROnPlateau":
            scheduler.step(case["metrics"][i])
        elif case["kind"] == "Stacked":
            for s in scheduler:
                s.step()
        else:
            scheduler.step()
        # ReduceLROnPlateau (1.13) has no get_last_lr(), only _last_lr
        if case["kind"] == "Stacked":
            last = scheduler[-1].get_last_lr()
        elif case["kind"] == "ReduceLROnPlateau":
            last = scheduler._last_lr
        else:
            last = scheduler.get_last_lr()
        lrs.append(list(last))
        moms.append(momentums(optimizer))
    return {"lrs": lrs, "momentums": moms}


write_answer({"cases": [run(case) for case in read_request()["cases"]]})
