/**
 * The recurrences of LSTM and GRU layers (PyTorch 1.13's gate order and equations), one direction
 * of one layer per call: `lstmLayer` and `gruLayer` take the input projection of every time step,
 * already computed by one matmul (`linear(x, W_ih, b_ih)`), and run the time loop:
 *
 * - forward, per step: one matmul `h · W_hhᵀ + b_hh`, then ONE fused gate kernel that applies the
 *   activations, writes the new state (h, and c for LSTM) for the next step, the step's output
 *   row, and the gate activations that backward needs;
 * - backward, per step (in reverse): ONE fused gate-gradient kernel (the activations' derivatives,
 *   the cell state's gradient carried to the previous step) and one matmul `dgates · W_hh` for the
 *   hidden state's gradient; the weight and bias gradients of every step are summed at the end by
 *   one matmul and one row sum over all steps.
 *
 * Step offsets come through the per-call `params` uniform, so one pipeline serves every step of a
 * shape. Each kernel binds at most 8 storage buffers (the WebGPU default per stage).
 *
 * LSTM (gates i, f, g, o): c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c').
 * GRU (gates r, z, n): r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r (W_hn h + b_hn)),
 * h' = (1 - z) n + z h.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { noGrad } from "../graph.ts";
import { u32 } from "../gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { add } from "./elementwise.ts";
import { cat, narrow } from "./layout.ts";
import { linear, matmul } from "./matmul.ts";
import { sum } from "./reduce.ts";

/** Shape of one step's kernel: batch and hidden size. */
interface StepOptions {
  /** Batch size N. */
  n: number;
  /** Hidden size H. */
  h: number;
}

/** WGSL helpers of the gate kernels. */
const GATE_HELPERS = /* wgsl */ `
fn sigm(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn tanhc(x: f32) -> f32 { return tanh(clamp(x, -10.0, 10.0)); }`;

/** The common plan and index prologue: one invocation per (batch row, hidden unit). */
function stepKernel(
  name: string,
  bindings: readonly { name: string; role: "input" | "write" }[],
  params: string,
  gates: number,
  body: string,
): KernelSpec<StepOptions> {
  return {
    name,
    key: ({ n, h }) => `${n}_${h}`,
    bindings: () => bindings,
    plan: ({ n, h }, policy) => ({
      workgroupSize: policy.elementwiseWorkgroup,
      groups: Math.ceil(n * h / policy.elementwiseWorkgroup),
    }),
    params,
    prelude: ({ h }) =>
      `const HIDDEN = ${u32(h)};\nconst GATES = ${u32(gates)} * HIDDEN;\n${GATE_HELPERS}`,
    body: ({ n, h }, { plan }) => /* wgsl */ `
  let e = group * ${u32(plan.workgroupSize)} + lid;
  if (e >= ${u32(n * h)}) { return; }
  let row = e / HIDDEN;
  let j = e % HIDDEN;
  let g0 = row * GATES + j;
${body}`,
  };
}

/**
 * LSTM forward step. xp: the input projections [T, N, 4H] (step at params.xOff), hw: h · W_hhᵀ +
 * b_hh [N, 4H], cp: c before the step [N, H]. Writes h' and c' [N, H], the output row (at
 * params.outOff; with params.last, c' also at params.cOff), the activations [T, N, 4H] and c'
 * [T, N, H] at the step's position.
 */
const LSTM_FORWARD = stepKernel(
  "lstm_step",
  [
    { name: "xp", role: "input" },
    { name: "hw", role: "input" },
    { name: "cp", role: "input" },
    { name: "hNext", role: "write" },
    { name: "cNext", role: "write" },
    { name: "out", role: "write" },
    { name: "acts", role: "write" },
    { name: "cells", role: "write" },
  ],
  "xOff: u32, outOff: u32, cOff: u32, last: u32",
  4,
  /* wgsl */ `
  let x0 = params.xOff + g0;
  let i = sigm(xpAt(x0) + hwAt(g0));
  let f = sigm(xpAt(x0 + HIDDEN) + hwAt(g0 + HIDDEN));
  let g = tanhc(xpAt(x0 + 2u * HIDDEN) + hwAt(g0 + 2u * HIDDEN));
  let o = sigm(xpAt(x0 + 3u * HIDDEN) + hwAt(g0 + 3u * HIDDEN));
  let c = f * cpAt(e) + i * g;
  let hv = o * tanhc(c);
  hNext[e] = hv;
  cNext[e] = c;
  out[params.outOff + e] = hv;
  if (params.last != 0u) { out[params.cOff + e] = c; }
  acts[x0] = i;
  acts[x0 + HIDDEN] = f;
  acts[x0 + 2u * HIDDEN] = g;
  acts[x0 + 3u * HIDDEN] = o;
  cells[params.outOff + e] = c;`,
);

/**
 * LSTM backward step. go: the output's gradient [T + 1, N, H] (row t at params.gOff; the c_n row
 * at params.cOff), dhm: dgates(next step) · W_hh [N, H], dcc: c's gradient from the next step,
 * acts: the activations, cprev: c before each step [T, N, H]. On the first backward step
 * (params.first) dhm and dcc are absent (zero and go's c_n row). Writes the pre-activation gradient
 * [N, 4H] for the matmul, and at the step's position in [T, N, 4H], and c's gradient before the
 * step.
 */
const LSTM_BACKWARD = stepKernel(
  "lstm_step_backward",
  [
    { name: "go", role: "input" },
    { name: "dhm", role: "input" },
    { name: "dcc", role: "input" },
    { name: "acts", role: "input" },
    { name: "cprev", role: "input" },
    { name: "dgs", role: "write" },
    { name: "dga", role: "write" },
    { name: "dcn", role: "write" },
  ],
  "gOff: u32, xOff: u32, cOff: u32, first: u32",
  4,
  /* wgsl */ `
  let x0 = params.xOff + g0;
  var dh = goAt(params.gOff + e);
  var dc = goAt(params.cOff + e);
  if (params.first == 0u) {
    dh = dh + dhmAt(e);
    dc = dccAt(e);
  }
  let i = actsAt(x0);
  let f = actsAt(x0 + HIDDEN);
  let g = actsAt(x0 + 2u * HIDDEN);
  let o = actsAt(x0 + 3u * HIDDEN);
  let cp = cprevAt(params.gOff + e);
  let tc = tanhc(f * cp + i * g);
  dc = dc + dh * o * (1.0 - tc * tc);
  let di = dc * g * i * (1.0 - i);
  let df = dc * cp * f * (1.0 - f);
  let dg = dc * i * (1.0 - g * g);
  let dO = dh * tc * o * (1.0 - o);
  dgs[g0] = di;
  dgs[g0 + HIDDEN] = df;
  dgs[g0 + 2u * HIDDEN] = dg;
  dgs[g0 + 3u * HIDDEN] = dO;
  dga[x0] = di;
  dga[x0 + HIDDEN] = df;
  dga[x0 + 2u * HIDDEN] = dg;
  dga[x0 + 3u * HIDDEN] = dO;
  dcn[e] = dc * f;`,
);

/**
 * GRU forward step. xp: the input projections [T, N, 3H] (step at params.xOff), hw: h · W_hhᵀ +
 * b_hh [N, 3H], hp: h before the step [N, H]. Writes h' [N, H], the output row (params.outOff) and
 * r, z, n and W_hn h + b_hn at the step's position in [T, N, 4H] (params.sOff).
 */
const GRU_FORWARD = stepKernel(
  "gru_step",
  [
    { name: "xp", role: "input" },
    { name: "hw", role: "input" },
    { name: "hp", role: "input" },
    { name: "hNext", role: "write" },
    { name: "out", role: "write" },
    { name: "saved", role: "write" },
  ],
  "xOff: u32, outOff: u32, sOff: u32",
  3,
  /* wgsl */ `
  let x0 = params.xOff + g0;
  let r = sigm(xpAt(x0) + hwAt(g0));
  let z = sigm(xpAt(x0 + HIDDEN) + hwAt(g0 + HIDDEN));
  let hn = hwAt(g0 + 2u * HIDDEN);
  let nv = tanhc(xpAt(x0 + 2u * HIDDEN) + r * hn);
  let hv = (1.0 - z) * nv + z * hpAt(e);
  hNext[e] = hv;
  out[params.outOff + e] = hv;
  let s0 = params.sOff + row * 4u * HIDDEN + j;
  saved[s0] = r;
  saved[s0 + HIDDEN] = z;
  saved[s0 + 2u * HIDDEN] = nv;
  saved[s0 + 3u * HIDDEN] = hn;`,
);

/**
 * GRU backward step. go: the output's gradient [T, N, H] (row at params.gOff), dhm: dhw(next step)
 * · W_hh, dhd: the next step's direct term dh z, saved: r, z, n, hn, hprev: h before each step
 * [T, N, H]. Writes the input projection's gradient at the step's position in [T, N, 3H], the
 * gradient of h · W_hhᵀ + b_hh [N, 3H] for the matmul, and this step's direct term.
 */
const GRU_BACKWARD = stepKernel(
  "gru_step_backward",
  [
    { name: "go", role: "input" },
    { name: "dhm", role: "input" },
    { name: "dhd", role: "input" },
    { name: "saved", role: "input" },
    { name: "hprev", role: "input" },
    { name: "dxa", role: "write" },
    { name: "dhs", role: "write" },
    { name: "dhdn", role: "write" },
  ],
  "gOff: u32, xOff: u32, sOff: u32, first: u32",
  3,
  /* wgsl */ `
  var dh = goAt(params.gOff + e);
  if (params.first == 0u) { dh = dh + dhmAt(e) + dhdAt(e); }
  let s0 = params.sOff + row * 4u * HIDDEN + j;
  let r = savedAt(s0);
  let z = savedAt(s0 + HIDDEN);
  let nv = savedAt(s0 + 2u * HIDDEN);
  let hn = savedAt(s0 + 3u * HIDDEN);
  let dnp = dh * (1.0 - z) * (1.0 - nv * nv);
  let dzp = dh * (hprevAt(params.gOff + e) - nv) * z * (1.0 - z);
  let drp = dnp * hn * r * (1.0 - r);
  let x0 = params.xOff + g0;
  dxa[x0] = drp;
  dxa[x0 + HIDDEN] = dzp;
  dxa[x0 + 2u * HIDDEN] = dnp;
  dhs[g0] = drp;
  dhs[g0 + HIDDEN] = dzp;
  dhs[g0 + 2u * HIDDEN] = dnp * r;
  dhdn[e] = dh * z;`,
);

/** GRU: the gradient of every step's h · W_hhᵀ + b_hh, from the input projection's (n part × r). */
const GRU_HIDDEN_GRAD = stepKernel(
  "gru_hidden_grad",
  [
    { name: "dxa", role: "input" },
    { name: "saved", role: "input" },
    { name: "dhw", role: "write" },
  ],
  "unused: u32",
  3,
  /* wgsl */ `
  let s0 = row * 4u * HIDDEN + j;
  dhw[g0] = dxaAt(g0);
  dhw[g0 + HIDDEN] = dxaAt(g0 + HIDDEN);
  dhw[g0 + 2u * HIDDEN] = dxaAt(g0 + 2u * HIDDEN) * savedAt(s0);`,
);

/** Options of `lstmLayer` and `gruLayer`. */
export interface RecurrenceOptions {
  /** Run the time steps from last to first (the reverse direction of a bidirectional layer). */
  reverse?: boolean;
}

function checkRecurrence(
  op: string,
  gates: number,
  xproj: Tensor,
  weightHh: Tensor,
  biasHh: Tensor | null,
  states: readonly [string, Tensor][],
): { t: number; n: number; h: number } {
  const h = weightHh.shape[1];
  if (weightHh.rank !== 2 || weightHh.shape[0] !== gates * h) {
    throw new Error(
      `${op}: weightHh ${formatShape(weightHh.shape)} must be [${gates} * hidden, hidden]`,
    );
  }
  if (xproj.rank !== 3 || xproj.shape[2] !== gates * h) {
    throw new Error(
      `${op}: xproj ${formatShape(xproj.shape)} must be [T, N, ${gates * h}] (${gates} gates of ` +
        `hidden ${h}, from weightHh ${formatShape(weightHh.shape)})`,
    );
  }
  const [t, n] = xproj.shape;
  if (t === 0) throw new Error(`${op}: xproj ${formatShape(xproj.shape)} has no time step`);
  if (biasHh && (biasHh.rank !== 1 || biasHh.shape[0] !== gates * h)) {
    throw new Error(`${op}: biasHh ${formatShape(biasHh.shape)} must be [${gates * h}]`);
  }
  for (const [name, state] of states) {
    if (state.size !== n * h) {
      throw new Error(
        `${op}: ${name} ${formatShape(state.shape)} must hold N * hidden = ${n} * ${h} values ` +
          `([${n}, ${h}])`,
      );
    }
  }
  for (const x of [xproj, weightHh, ...(biasHh ? [biasHh] : []), ...states.map(([, s]) => s)]) {
    if (x.dtype !== "f32") throw new Error(`${op}: needs f32 tensors, got ${x.dtype}`);
  }
  return { t, n, h };
}

/** h · W_hhᵀ + b_hh, without recording. */
function hiddenProjection(h: Tensor, weightHh: Tensor, biasHh: Tensor | null): Tensor {
  return linear(h, weightHh, biasHh ?? undefined);
}

/** The state before each position: `initial` at the first step, then the step outputs shifted. */
function previousStates(
  all: Tensor,
  initial: Tensor,
  t: number,
  n: number,
  h: number,
  reverse: boolean,
): Tensor {
  const first = initial.reshape([1, n, h]);
  if (t === 1) return first.view();
  const rest = narrow(all, 0, reverse ? 1 : 0, t - 1);
  const result = cat(reverse ? [rest, first] : [first, rest]);
  rest.dispose();
  first.dispose();
  return result;
}

/**
 * One direction of one LSTM layer: `xproj` [T, N, 4H] (x · W_ihᵀ + b_ih for every step, gates
 * i, f, g, o), `weightHh` [4H, H], `biasHh` [4H] or null, initial states `h0` and `c0` [N, H].
 * Returns [T + 1, N, H]: the hidden state after each time position (rows 0..T-1, in time order
 * also when `reverse`), then the final cell state (row T). The final hidden state is row T - 1
 * (row 0 when reversed). Differentiable in every input.
 */
export function lstmLayer(
  xproj: Tensor,
  weightHh: Tensor,
  biasHh: Tensor | null,
  h0: Tensor,
  c0: Tensor,
  options: RecurrenceOptions = {},
): Tensor {
  const reverse = options.reverse ?? false;
  const { t, n, h } = checkRecurrence("lstmLayer", 4, xproj, weightHh, biasHh, [["h0", h0], [
    "c0",
    c0,
  ]]);
  const shape = { n, h };
  const out = Tensor.empty([t + 1, n, h]);
  const acts = Tensor.empty([t, n, 4 * h]);
  const cells = Tensor.empty([t, n, h]);
  noGrad(() => {
    let hCur = h0.reshape([n, h]), cCur = c0.reshape([n, h]);
    for (let s = 0; s < t; s++) {
      const pos = reverse ? t - 1 - s : s;
      const hw = hiddenProjection(hCur, weightHh, biasHh);
      const hNext = Tensor.empty([n, h]), cNext = Tensor.empty([n, h]);
      runKernel(LSTM_FORWARD, shape, { xp: xproj, hw, cp: cCur, hNext, cNext, out, acts, cells }, {
        params: new Uint32Array([pos * n * 4 * h, pos * n * h, t * n * h, s === t - 1 ? 1 : 0]),
      });
      hw.dispose();
      hCur.dispose();
      cCur.dispose();
      hCur = hNext;
      cCur = cNext;
    }
    hCur.dispose();
    cCur.dispose();
  });
  const inputs = biasHh ? [xproj, weightHh, biasHh, h0, c0] : [xproj, weightHh, h0, c0];
  return recordOp("lstmLayer", out, inputs, (grad) => {
    const cprev = previousStates(cells, c0, t, n, h, reverse);
    const dga = Tensor.empty([t, n, 4 * h]);
    let dhm: Tensor | null = null, dcc: Tensor | null = null;
    let dgs: Tensor | null = null;
    for (let s = t - 1; s >= 0; s--) {
      const pos = reverse ? t - 1 - s : s;
      dgs?.dispose();
      dgs = Tensor.empty([n, 4 * h]);
      const dcn = Tensor.empty([n, h]);
      runKernel(
        LSTM_BACKWARD,
        shape,
        { go: grad, dhm: dhm ?? grad, dcc: dcc ?? grad, acts, cprev, dgs, dga, dcn },
        {
          params: new Uint32Array([pos * n * h, pos * n * 4 * h, t * n * h, s === t - 1 ? 1 : 0]),
        },
      );
      dhm?.dispose();
      dcc?.dispose();
      dcc = dcn;
      dhm = s > 0 || h0.requiresGrad ? matmul(dgs, weightHh) : null;
    }
    cprev.dispose();
    const dgaRows = dga.reshape([t * n, 4 * h]);
    let gradW: Tensor | null = null;
    if (weightHh.requiresGrad) {
      const hprev = previousStates(out, h0, t, n, h, reverse);
      const hRows = hprev.reshape([t * n, h]);
      gradW = matmul(dgaRows, hRows, { transposeA: true });
      hRows.dispose();
      hprev.dispose();
    }
    const gradB = biasHh?.requiresGrad ? sum(dgaRows, { dim: 0 }) : null;
    dgaRows.dispose();
    dgs?.dispose();
    const gradH0 = h0.requiresGrad && dhm ? dhm.reshape(h0.shape) : null;
    dhm?.dispose();
    const gradC0 = c0.requiresGrad && dcc ? dcc.reshape(c0.shape) : null;
    dcc?.dispose();
    const gradX = xproj.requiresGrad ? dga : null;
    if (!gradX) dga.dispose();
    return biasHh ? [gradX, gradW, gradB, gradH0, gradC0] : [gradX, gradW, gradH0, gradC0];
  }, [acts, cells]);
}

/**
 * One direction of one GRU layer: `xproj` [T, N, 3H] (x · W_ihᵀ + b_ih for every step, gates r, z,
 * n), `weightHh` [3H, H], `biasHh` [3H] or null, initial state `h0` [N, H]. Returns [T, N, H]: the
 * hidden state after each time position, in time order (also when `reverse`); the final hidden
 * state is row T - 1 (row 0 when reversed). Differentiable in every input.
 */
export function gruLayer(
  xproj: Tensor,
  weightHh: Tensor,
  biasHh: Tensor | null,
  h0: Tensor,
  options: RecurrenceOptions = {},
): Tensor {
  const reverse = options.reverse ?? false;
  const { t, n, h } = checkRecurrence("gruLayer", 3, xproj, weightHh, biasHh, [["h0", h0]]);
  const shape = { n, h };
  const out = Tensor.empty([t, n, h]);
  const saved = Tensor.empty([t, n, 4 * h]);
  noGrad(() => {
    let hCur = h0.reshape([n, h]);
    for (let s = 0; s < t; s++) {
      const pos = reverse ? t - 1 - s : s;
      const hw = hiddenProjection(hCur, weightHh, biasHh);
      const hNext = Tensor.empty([n, h]);
      runKernel(GRU_FORWARD, shape, { xp: xproj, hw, hp: hCur, hNext, out, saved }, {
        params: new Uint32Array([pos * n * 3 * h, pos * n * h, pos * n * 4 * h]),
      });
      hw.dispose();
      hCur.dispose();
      hCur = hNext;
    }
    hCur.dispose();
  });
  const inputs = biasHh ? [xproj, weightHh, biasHh, h0] : [xproj, weightHh, h0];
  return recordOp("gruLayer", out, inputs, (grad) => {
    const hprev = previousStates(out, h0, t, n, h, reverse);
    const dxa = Tensor.empty([t, n, 3 * h]);
    let dhm: Tensor | null = null, dhd: Tensor | null = null;
    for (let s = t - 1; s >= 0; s--) {
      const pos = reverse ? t - 1 - s : s;
      const dhs = Tensor.empty([n, 3 * h]);
      const dhdn = Tensor.empty([n, h]);
      runKernel(
        GRU_BACKWARD,
        shape,
        { go: grad, dhm: dhm ?? grad, dhd: dhd ?? grad, saved, hprev, dxa, dhs, dhdn },
        {
          params: new Uint32Array([
            pos * n * h,
            pos * n * 3 * h,
            pos * n * 4 * h,
            s === t - 1 ? 1 : 0,
          ]),
        },
      );
      dhm?.dispose();
      dhd?.dispose();
      dhd = dhdn;
      dhm = s > 0 || h0.requiresGrad ? matmul(dhs, weightHh) : null;
      dhs.dispose();
    }
    let gradW: Tensor | null = null, gradB: Tensor | null = null;
    if (weightHh.requiresGrad || biasHh?.requiresGrad) {
      const dhw = Tensor.empty([t * n, 3 * h]);
      runKernel(GRU_HIDDEN_GRAD, { n: t * n, h }, { dxa, saved, dhw }, {
        params: new Uint32Array([0]),
      });
      if (weightHh.requiresGrad) {
        const hRows = hprev.reshape([t * n, h]);
        gradW = matmul(dhw, hRows, { transposeA: true });
        hRows.dispose();
      }
      if (biasHh?.requiresGrad) gradB = sum(dhw, { dim: 0 });
      dhw.dispose();
    }
    hprev.dispose();
    let gradH0: Tensor | null = null;
    if (h0.requiresGrad && dhm && dhd) {
      const sumH = add(dhm, dhd);
      gradH0 = sumH.reshape(h0.shape);
      sumH.dispose();
    }
    dhm?.dispose();
    dhd?.dispose();
    const gradX = xproj.requiresGrad ? dxa : null;
    if (!gradX) dxa.dispose();
    return biasHh ? [gradX, gradW, gradB, gradH0] : [gradX, gradW, gradH0];
  }, [saved]);
}
