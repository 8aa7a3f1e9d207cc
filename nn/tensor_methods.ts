/**
 * Installs Tensor's op methods (`x.matmul(w).add(b).relu().sum()`): the table of the ops behind
 * them. `nn/tensor.ts` declares the methods but cannot import the ops (they import it), so the
 * entry point imports this module for its side effect. A new method is one declaration in the
 * `Tensor` class and one entry here (the table's type requires an entry for every method).
 *
 * @module
 */

import { installTensorMethods, type TensorMethodTable } from "./tensor.ts";
import { eq, ge, gt, le, lt, ne } from "./ops/compare.ts";
import { add, div, maximum, minimum, mul, pow, relu, sub } from "./ops/elementwise.ts";
import {
  abs,
  clamp,
  cos,
  elu,
  exp,
  gelu,
  leakyRelu,
  log,
  neg,
  rsqrt,
  sigmoid,
  silu,
  sin,
  softplus,
  sqrt,
  square,
  tanh,
} from "./ops/unary.ts";
import { matmul } from "./ops/matmul.ts";
import {
  argmax,
  argmin,
  logsumexp,
  max,
  mean,
  min,
  prod,
  std,
  sum,
  variance,
} from "./ops/reduce.ts";
import { logSoftmax, softmax } from "./ops/softmax.ts";
import { squeeze, unsqueeze } from "./ops/shape.ts";
import { expand, narrow, permute, transpose } from "./ops/layout.ts";
import { gather, indexSelect } from "./ops/indexing.ts";
import { cast } from "./ops/cast.ts";

/** The op behind each Tensor method, by method name. */
export const TENSOR_METHODS: TensorMethodTable = {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  neg,
  abs,
  exp,
  log,
  sqrt,
  rsqrt,
  square,
  sin,
  cos,
  sigmoid,
  tanh,
  relu,
  leakyRelu,
  elu,
  gelu,
  silu,
  softplus,
  clamp,
  matmul,
  sum,
  mean,
  max,
  min,
  prod,
  logsumexp,
  var: variance,
  std,
  argmax,
  argmin,
  softmax,
  logSoftmax,
  squeeze,
  unsqueeze,
  transpose,
  permute,
  expand,
  narrow,
  indexSelect,
  gather,
  cast,
};

installTensorMethods(TENSOR_METHODS);
