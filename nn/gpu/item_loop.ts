/**
 * The grid-stride loop most elementwise-shaped kernels share: a few dozen narrow workgroups,
 * each invocation walking a run of items with its lanes on adjacent items, so that both of
 * llvmpipe's cores stay busy without paying for thousands of workgroups.
 *
 * @module
 */

import { u32 } from "./kernel.ts";
import type { KernelPolicy } from "./policy.ts";
import type { KernelPlan } from "./program.ts";

/** A plan in which each invocation loops over a run of `perInvocation` items. */
export interface LoopPlan extends KernelPlan {
  /** Workgroups dispatched. */
  groups: number;
  /** Items each invocation visits. */
  perInvocation: number;
}

/**
 * The plan covering `items` items with the policy's narrow workgroups: `groups` of them when
 * given, else as many as the items fill, at most `updateMaxGroups` and at least one.
 */
export function loopPlan(items: number, policy: KernelPolicy, groups?: number): LoopPlan {
  const workgroupSize = policy.narrowWorkgroup;
  const count = groups ??
    Math.max(1, Math.min(policy.updateMaxGroups, Math.ceil(items / workgroupSize)));
  return {
    workgroupSize,
    groups: count,
    perInvocation: Math.ceil(items / (count * workgroupSize)),
  };
}

/**
 * WGSL running `body` once for every item `index < items` (a `u32` named `index`, `t` unless
 * given), for a kernel planned by {@linkcode loopPlan}.
 */
export function itemLoop(items: number, plan: LoopPlan, body: string, index = "t"): string {
  return /* wgsl */ `
  let base = group * ${u32(plan.perInvocation * plan.workgroupSize)} + lid;
  for (var k = 0u; k < ${u32(plan.perInvocation)}; k++) {
    let ${index} = base + k * ${u32(plan.workgroupSize)};
    if (${index} < ${u32(items)}) {
${body}
    }
  }`;
}
