/**
 * Every scheduler's whole curve equals PyTorch 1.13's: `get_last_lr()` after construction and
 * after each step (and OneCycleLR's momentum, of SGD and of Adam's betas[0]), with one group and
 * with two groups of different lrs, for ReduceLROnPlateau on a given metric sequence. Skipped,
 * with a printed reason, when PyTorch is not importable (`tests/torch.ts`).
 */

import {
  ExponentialLR,
  LinearLR,
  type LrGroup,
  MultiStepLR,
  OneCycleLR,
} from "../../train/lr_scheduler.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";
import { assertClose } from "../testing.ts";
import { CASES, curveOf, GROUP_LRS, momentumCurveOf, targetOf } from "./scheduler_cases.ts";

const skip = skipWithoutTorch("scheduler_torch_test");
const TOLERANCE = { atol: 1e-15, rtol: 1e-6 };

interface TorchCurves {
  cases: { lrs: number[][]; momentums: number[][] }[];
}

Deno.test({
  name: "every scheduler's curve equals PyTorch's get_last_lr(), 1 and 2 parameter groups",
  ignore: skip,
  async fn() {
    const runs = CASES.flatMap((c) => GROUP_LRS.map((lrs) => ({ c, lrs })));
    const answer = await askTorch<TorchCurves>("schedulers.py", {
      cases: runs.map(({ c, lrs }) => ({ ...c.torch, lrs, steps: c.steps, metrics: c.metrics })),
    });
    runs.forEach(({ c, lrs }, i) => {
      const target = targetOf(lrs);
      const ours = curveOf(target, c.make(target), c.steps, c.metrics);
      assertClose(ours.flat(), answer.cases[i].lrs.flat(), TOLERANCE, `${c.label}, lrs ${lrs}`);
      if (c.referenceMomentum) {
        const fresh = targetOf(lrs);
        const momentum = momentumCurveOf(fresh, c.make(fresh), c.steps);
        assertClose(momentum.flat(), answer.cases[i].momentums.flat(), TOLERANCE, c.label);
      }
    });
  },
});

Deno.test({
  name: "OneCycleLR on Adam-like groups cycles betas[0] as PyTorch's Adam",
  ignore: skip,
  async fn() {
    const lrs = [0.01, 0.002];
    const answer = await askTorch<TorchCurves>("schedulers.py", {
      cases: [{
        kind: "OneCycleLR",
        optimizer: "adam",
        lrs,
        steps: 30,
        options: { totalSteps: 30, pctStart: 0.4 },
        maxLrFactor: 5,
      }],
    });
    const groups: LrGroup[] = lrs.map((lr) => ({ lr, betas: [0.9, 0.999] }));
    const target = { lr: lrs[0], paramGroups: groups };
    const scheduler = new OneCycleLR(target, {
      maxLr: lrs.map((lr) => lr * 5),
      totalSteps: 30,
      pctStart: 0.4,
    });
    const betas = [groups.map((g) => g.betas![0])];
    const seen = [scheduler.getLastLr()];
    for (let i = 0; i < 30; i++) {
      scheduler.step();
      seen.push(scheduler.getLastLr());
      betas.push(groups.map((g) => g.betas![0]));
    }
    assertClose(seen.flat(), answer.cases[0].lrs.flat(), TOLERANCE, "lrs");
    assertClose(betas.flat(), answer.cases[0].momentums.flat(), TOLERANCE, "betas[0]");
  },
});

Deno.test({
  name: "schedulers stacked on one optimizer compose as PyTorch's chainable forms",
  ignore: skip,
  async fn() {
    const lrs = [0.1, 0.02];
    const answer = await askTorch<TorchCurves>("schedulers.py", {
      cases: [{
        kind: "Stacked",
        lrs,
        steps: 30,
        schedulers: [
          { kind: "LinearLR", options: { startFactor: 0.2, totalIters: 4 } },
          { kind: "ExponentialLR", options: { gamma: 0.95 } },
          { kind: "MultiStepLR", options: { milestones: [6, 15], gamma: 0.5 } },
        ],
      }],
    });
    const target = targetOf(lrs);
    const stacked = [
      new LinearLR(target, { startFactor: 0.2, totalIters: 4 }),
      new ExponentialLR(target, { gamma: 0.95 }),
      new MultiStepLR(target, { milestones: [6, 15], gamma: 0.5 }),
    ];
    const seen = [stacked[2].getLastLr()];
    for (let i = 0; i < 30; i++) {
      for (const scheduler of stacked) scheduler.step();
      seen.push(stacked[2].getLastLr());
    }
    assertClose(seen.flat(), answer.cases[0].lrs.flat(), TOLERANCE, "stacked");
  },
});
