// gpt2_block.h: a transformer block, forward and backward, as both trainers run it, with the
// ATTNChecker-protected GEMMs of its attention, and the second rung of the escalation ladder
// (recompute a layer). The composition lives here once; the layers it calls are each
// trainer's own, with the same signatures (plain loops in train_gpt2.cpp, kernels in
// train_gpt2.cu), defined before this header is included:
//   layernorm_, gelu_, permute_, unpermute_, softmax_ forward/backward,
//   residual_forward, bias_backward, zero_floats, protected_gemm(model, gemm, op, layer): a GEMM under
//   ATTNChecker (compute, check, repair or recompute; false when the output stays faulty; a
//   GEMM outside -abft_scope is computed and not checked),
//   kernel_check(model, op, layer, shape) and kernel_verdict(model, check): the check and fault
//   a kernel with an invariant takes (the layernorms, softmax, GELU and residual adds take an
//   AbftKernelCheck: llmc/abft_invariants.h), and its verdict once it ran, and
//   layer_sums(model, layer): where permute and softmax write the checksum sums of the layer's
//   attention GEMMs (AbftLayerSums; all null in the CPU trainer, which computes none).
// Activations, their gradients and the GEMMs' operands are floatX (llmc/precision.h: float
// unless the CUDA trainer is built for bf16).
//
// Reading path: blocks_forward → block_forward → attention_forward → protected_gemm; the
// backward pass mirrors it (blocks_backward → block_backward → attention_backward), through
// one layer's set of activation-gradient buffers (llmc/gpt2_model.h) that every layer reuses.
#pragma once

#include "abft.cuh"
#include "llmc/gpt2_model.h"
#include "llmc/precision.h"

// ----------------------------------------------------------------------------
// the kernels checked by an invariant (-abft_scope all)

// run(k) runs op's kernel with its check and fault k; false when a row of its output broke the
// invariant again after its recompute (bad inputs: the caller climbs the ladder).
template <typename Run>
static bool checked_kernel(GPT2* model, int op, int layer, const AbftKernelShape& shape, Run run) {
    const AbftKernelCheck k = kernel_check(model, op, layer, shape);
    run(k);
    return kernel_verdict(model, k);
}

// ----------------------------------------------------------------------------
// the linear layers of the MLP and the LM head: protected GEMMs, checked with -abft_scope all

// out (rows, OC) = inp (rows, IC) · weightᵀ + bias. False when out stays faulty.
static bool linear_forward(GPT2* model, floatX* out, const floatX* inp, const floatX* weight, const floatX* bias, int rows,
                           int IC, int OC, int op, int layer) {
    return protected_gemm(model, linear_gemm(out, inp, weight, bias, rows, IC, OC), op, layer);
}

// Its backward: dinp = dout · weight (op_dx), dweight = doutᵀ · inp (op_dw), and dbias when
// there is a bias. False when a gradient stays faulty.
static bool linear_backward(GPT2* model, floatX* dinp, floatX* dweight, floatX* dbias, const floatX* dout, const floatX* inp,
                            const floatX* weight, int rows, int IC, int OC, int op_dx, int op_dw, int layer) {
    if (!protected_gemm(model, linear_dinp_gemm(dinp, dout, weight, rows, IC, OC), op_dx, layer)) { return false; }
    if (!protected_gemm(model, linear_dweight_gemm(dweight, dout, inp, rows, IC, OC), op_dw, layer)) { return false; }
    if (dbias != nullptr) { bias_backward(dbias, dout, rows, OC); }
    return true;
}

// ----------------------------------------------------------------------------
// forward: the four protected GEMMs of the attention, then the MLP

// The attention half of a block, ln1 -> attproj: four protected GEMMs. False when a GEMM stays
// faulty after recomputation (the caller recomputes the layer, then redoes the step).
static bool attention_forward(GPT2* model, int l, const floatX* residual) {
    const int B = model->B, T = model->T, C = model->config.channels, NH = model->config.num_heads, HS = C / NH;
    const LayerActs a = layer_acts(model->acts, model, l);
    const LayerParams p = layer_params(model->params, model->config, l);
    const float scale = 1.0f / sqrtf((float)HS);
    const AbftLayerSums s = layer_sums(model, l);
    if (!checked_kernel(model, OP_LN1, l, AbftKernelShape{(long)B * T, C}, [&](const AbftKernelCheck& k) {
            layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, residual, p.ln1w, p.ln1b, B, T, C, s.ln1, k);
        })) {
        return false;
    }
    AbftGemm qkv = linear_gemm(a.qkv, a.ln1, p.qkvw, p.qkvb, B * T, C, 3 * C, s.qkvw);
    qkv.row_chk = s.ln1.chk; qkv.row_bound = s.ln1.bound; // from the layernorm
    qkv.reader_checks = s.readers_check;                  // by the permute
    if (!protected_gemm(model, qkv, OP_QKV, l)) { return false; }
    permute_forward(a.q, a.k, a.v, a.qkv, B, T, NH, HS, s);
    // S = Q·Kᵀ/√HS: per head (T, T) = (T, HS)·(HS, T); only j <= i is read by the softmax
    AbftGemm qk = heads_gemm(B * NH, T, T, HS);
    qk.A = row_major(a.q, HS); qk.B = transposed(a.k, HS); qk.C = a.preatt; qk.alpha = scale; qk.causal = true;
    qk.reader_checks = s.readers_check; qk.reader_chk = s.s_chk; qk.reader_bound = s.s_bound;
    if (!protected_gemm(model, qk, OP_QK, l)) { return false; }
    if (!checked_kernel(model, OP_SOFTMAX, l, AbftKernelShape{(long)B * NH * T, T, T}, [&](const AbftKernelCheck& k) {
            softmax_forward(a.att, a.preatt, B, NH, T, s, k);
        })) {
        return false;
    }
    // Y = P·V: per head (T, HS) = (T, T)·(T, HS); its rows' checksums came with P
    AbftGemm pv = heads_gemm(B * NH, T, HS, T);
    pv.A = row_major(a.att, T); pv.B = row_major(a.v, HS); pv.C = a.yh;
    pv.row_chk = s.pv_chk; pv.row_bound = s.pv_bound;
    pv.reader_checks = s.readers_check; // by the unpermute
    if (!protected_gemm(model, pv, OP_PV, l)) { return false; }
    unpermute_forward(a.atty, a.yh, B, T, NH, HS, s);
    AbftGemm proj = linear_gemm(a.attproj, a.atty, p.attprojw, p.attprojb, B * T, C, C, s.attprojw);
    proj.row_chk = s.atty.chk; proj.row_bound = s.atty.bound; // from the unpermute
    proj.reader_checks = s.readers_check; // by the residual add (block_forward)
    return protected_gemm(model, proj, OP_PROJ, l);
}

static bool block_forward(GPT2* model, int l) {
    const int B = model->B, T = model->T, C = model->config.channels;
    const LayerActs a = layer_acts(model->acts, model, l);
    const LayerParams p = layer_params(model->params, model->config, l);
    const floatX* residual = l == 0 ? model->acts.encoded : layer_acts(model->acts, model, l - 1).residual3;
    const AbftKernelShape rows = {(long)B * T, C}, mlp = {(long)B * T, 4 * C};
    if (!attention_forward(model, l, residual)) { return false; }
    if (!checked_kernel(model, OP_RES2, l, rows, [&](const AbftKernelCheck& k) {
            residual_forward(a.residual2, residual, a.attproj, B * T, C, k); // also checks attproj (its reader)
        })) {
        return false;
    }
    if (!checked_kernel(model, OP_LN2, l, rows, [&](const AbftKernelCheck& k) {
            layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.residual2, p.ln2w, p.ln2b, B, T, C, AbftRowSums{}, k);
        })) {
        return false;
    }
    if (!linear_forward(model, a.fch, a.ln2, p.fcw, p.fcb, B * T, C, 4 * C, OP_FC, l)) { return false; }
    if (!checked_kernel(model, OP_GELU, l, mlp, [&](const AbftKernelCheck& k) {
            gelu_forward(a.fch_gelu, a.fch, (long)B * T * 4 * C, k);
        })) {
        return false;
    }
    if (!linear_forward(model, a.fcproj, a.fch_gelu, p.fcprojw, p.fcprojb, B * T, 4 * C, C, OP_FCPROJ, l)) { return false; }
    return checked_kernel(model, OP_RES3, l, rows, [&](const AbftKernelCheck& k) {
        residual_forward(a.residual3, a.residual2, a.fcproj, B * T, C, k);
    });
}

// All L blocks. A block whose fault survived its GEMM's recomputation is recomputed once, the
// second rung of the ladder; false when that fails too (the caller redoes the step).
static bool blocks_forward(GPT2* model) {
    for (int l = 0; l < model->config.num_layers; l++) {
        if (block_forward(model, l)) { continue; }
        model->abft.n.recomputed_layer++;
        if (model->abft.cfg.verbose) { printf("abft: step %d layer %d: recomputing the layer\n", model->abft.step, l); }
        if (!block_forward(model, l)) { return false; }
    }
    return true;
}

// ----------------------------------------------------------------------------
// backward: the eight protected GEMMs of the attention

// The top of the model, forward: the final layernorm and the LM head, logits (B,T,Vp) = lnf · wteᵀ.
// False when the logits stay faulty (the caller redoes the step).
static bool head_forward(GPT2* model) {
    const int B = model->B, T = model->T, C = model->config.channels, Vp = model->config.padded_vocab_size;
    const ActivationTensors& a = model->acts;
    const floatX* residual = layer_acts(a, model, model->config.num_layers - 1).residual3;
    if (!checked_kernel(model, OP_LNF, 0, AbftKernelShape{(long)B * T, C}, [&](const AbftKernelCheck& k) {
            layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, residual, model->params.lnfw, model->params.lnfb, B, T, C,
                              AbftRowSums{}, k);
        })) {
        return false;
    }
    AbftGemm lm = linear_gemm(a.logits, a.lnf, model->params.wte, nullptr, B * T, C, Vp);
    lm.read_cols = model->config.vocab_size; // the loss reads no padding
    return protected_gemm(model, lm, OP_LM, 0);
}

// The attention half of a block, backward: dattproj -> dln1, eight protected GEMMs. The
// attention's output gradient is the residual stream's (dresidual), read before the layernorm
// adds the input's gradient into it; every other gradient is written.
static bool attention_backward(GPT2* model, int l, const floatX* residual, floatX* dresidual) {
    const int B = model->B, T = model->T, C = model->config.channels, NH = model->config.num_heads, HS = C / NH;
    const LayerActs a = layer_acts(model->acts, model, l);
    const ActivationGradTensors& d = model->grads_acts;
    const LayerParams p = layer_params(model->params, model->config, l);
    const LayerParams dp = layer_params(model->grads, model->config, l);
    const float scale = 1.0f / sqrtf((float)HS);
    const int BT = B * T;
    const AbftLayerSums s = layer_sums(model, l);
    // out = Y·Wprojᵀ + b:  dY = dout·Wproj, dWproj = doutᵀ·Y
    AbftGemm dy = linear_dinp_gemm(d.atty, dresidual, p.attprojw, BT, C, C);
    dy.row_chk = s.dres.chk; dy.row_bound = s.dres.bound; // from the layernorm backward (block_backward)
    dy.reader_checks = s.readers_check;                   // by the unpermute, after dWproj's GEMM
    if (!protected_gemm(model, dy, OP_PROJ_DX, l)) { return false; }
    AbftGemm dwproj = linear_dweight_gemm(dp.attprojw, dresidual, a.atty, BT, C, C);
    dwproj.a_part = s.dres.part; dwproj.a_part_abs = s.dres.part_abs; dwproj.a_parts = s.dres.parts; // from the layernorm backward
    if (!protected_gemm(model, dwproj, OP_PROJ_DW, l)) { return false; }
    bias_backward(dp.attprojb, dresidual, BT, C);
    unpermute_backward(d.yh, d.atty, B, T, NH, HS);
    // Y = P·V:  dP = dY·Vᵀ (T,T), dV = Pᵀ·dY (T,HS), per head; e·Pᵀ (P's row sums) came with P
    AbftGemm dpg = heads_gemm(B * NH, T, T, HS);
    dpg.A = row_major(d.yh, HS); dpg.B = transposed(a.v, HS); dpg.C = d.att; dpg.causal = true;
    dpg.reader_checks = s.readers_check; dpg.reader_chk = s.dp_chk; dpg.reader_bound = s.dp_bound;
    dpg.a_row_w = s.p_sum; dpg.a_row_wabs = s.p_sum; dpg.a_wsum = s.dv_chk; dpg.a_wabs = s.dv_bound; // dV's, on the way
    if (!protected_gemm(model, dpg, OP_PV_DP, l)) { return false; }
    AbftGemm dvg = heads_gemm(B * NH, T, HS, T);
    dvg.A = transposed(a.att, T); dvg.B = row_major(d.yh, HS); dvg.C = d.v;
    if (abft_due(&model->abft, OP_PV_DP)) { // dP's check forms them this step (else they are stale)
        dvg.col_chk = s.dv_chk; dvg.col_bound = s.dv_bound;
    }
    dvg.a_sum = s.p_sum; dvg.a_abs = s.p_sum; // P >= 0; for when dP's check formed no dv_chk
    dvg.cols_by_reader = s.dkv_part != nullptr; // its column sums taken by the permute backward
    if (!protected_gemm(model, dvg, OP_PV_DV, l)) { return false; }
    softmax_backward(d.preatt, d.att, a.att, B, NH, T, s);
    // S = Q·Kᵀ/√HS:  dQ = dS·K/√HS, dK = dSᵀ·Q/√HS, per head; their checksum sums came with dS
    AbftGemm dqg = heads_gemm(B * NH, T, HS, T);
    dqg.A = row_major(d.preatt, T); dqg.B = row_major(a.k, HS); dqg.C = d.q; dqg.alpha = scale;
    dqg.row_chk = s.dq_chk; dqg.row_bound = s.dq_bound;
    dqg.reader_checks = s.readers_check; // by the permute, after dK's GEMM (which does not read dQ)
    if (!protected_gemm(model, dqg, OP_QK_DQ, l)) { return false; }
    AbftGemm dkg = heads_gemm(B * NH, T, HS, T);
    dkg.A = transposed(d.preatt, T); dkg.B = row_major(a.q, HS); dkg.C = d.k; dkg.alpha = scale;
    dkg.a_sum = s.ds_sum; dkg.a_abs = s.ds_abs;
    dkg.cols_by_reader = s.dkv_part != nullptr;
    if (!protected_gemm(model, dkg, OP_QK_DK, l)) { return false; }
    permute_backward(d.qkv, d.q, d.k, d.v, B, T, NH, HS, s); // and dV's and dK's column checks
    // qkv = ln1·Wqkvᵀ + b:  dln1 = dqkv·Wqkv, dWqkv = dqkvᵀ·ln1
    AbftGemm dln1 = linear_dinp_gemm(d.ln1, d.qkv, p.qkvw, BT, C, 3 * C);
    dln1.row_chk = s.dqkv.chk; dln1.row_bound = s.dqkv.bound; dln1.row_pieces = s.dqkv.pieces; // from the permute
    dln1.reader_checks = s.readers_check;                     // by the layernorm backward, after dWqkv's GEMM
    if (!protected_gemm(model, dln1, OP_QKV_DX, l)) { return false; }
    AbftGemm dwqkv = linear_dweight_gemm(dp.qkvw, d.qkv, a.ln1, BT, C, 3 * C);
    dwqkv.a_part = s.dqkv.part; dwqkv.a_part_abs = s.dqkv.part_abs; dwqkv.a_parts = s.dqkv.parts; // from the permute
    if (!protected_gemm(model, dwqkv, OP_QKV_DW, l)) { return false; }
    bias_backward(dp.qkvb, d.qkv, BT, 3 * C);
    layernorm_backward(dresidual, dp.ln1w, dp.ln1b, d.ln1, residual, p.ln1w, a.ln1_mean, a.ln1_rstd, B, T, C);
    return true;
}

// The block from its output's gradient, which the residual stream's gradient buffer holds, to
// its input's, which it holds afterwards: both branches of each residual add read it as their
// gradient, and each layernorm adds its input's gradient into it.
static bool block_backward(GPT2* model, int l) {
    const int B = model->B, T = model->T, C = model->config.channels;
    const LayerActs a = layer_acts(model->acts, model, l);
    const ActivationGradTensors& d = model->grads_acts;
    const LayerParams p = layer_params(model->params, model->config, l);
    const LayerParams dp = layer_params(model->grads, model->config, l);
    const floatX* residual = l == 0 ? model->acts.encoded : layer_acts(model->acts, model, l - 1).residual3;
    floatX* dresidual = d.residual;
    const AbftLayerSums s = layer_sums(model, l);
    if (!linear_backward(model, d.fch_gelu, dp.fcprojw, dp.fcprojb, dresidual, a.fch_gelu, p.fcprojw, B * T, 4 * C, C,
                         OP_FCPROJ_DX, OP_FCPROJ_DW, l)) {
        return false;
    }
    gelu_backward(d.fch, a.fch, d.fch_gelu, (long)B * T * C * 4);
    if (!linear_backward(model, d.ln2, dp.fcw, dp.fcb, d.fch, a.ln2, p.fcw, B * T, C, 4 * C, OP_FC_DX, OP_FC_DW, l)) {
        return false;
    }
    layernorm_backward(dresidual, dp.ln2w, dp.ln2b, d.ln2, a.residual2, p.ln2w, a.ln2_mean, a.ln2_rstd, B, T, C, s.dres);
    return attention_backward(model, l, residual, dresidual);
}

// From dlogits (written over acts.logits) down through the LM head and the final layernorm to
// the last block's output, whose gradient starts the residual stream's (grads_acts.residual);
// wte's gradient is written here (the embedding backward adds to it). False when a gradient
// stays faulty (the caller redoes the step).
static bool head_backward(GPT2* model) {
    const int B = model->B, T = model->T, C = model->config.channels, Vp = model->config.padded_vocab_size;
    const ActivationTensors& a = model->acts;
    const ActivationGradTensors& d = model->grads_acts;
    const int L = model->config.num_layers;
    AbftGemm dx = linear_dinp_gemm(d.lnf, a.logits, model->params.wte, B * T, C, Vp);
    AbftGemm dw = linear_dweight_gemm(model->grads.wte, a.logits, a.lnf, B * T, C, Vp);
    dw.read_rows = model->config.vocab_size; // the padding's rows reach no loss
    if (!protected_gemm(model, dx, OP_LM_DX, 0) || !protected_gemm(model, dw, OP_LM_DW, 0)) { return false; }
    zero_floats(d.residual, (size_t)B * T * C); // the layernorm adds into it
    layernorm_backward(d.residual, model->grads.lnfw, model->grads.lnfb, d.lnf, layer_acts(a, model, L - 1).residual3,
                       model->params.lnfw, a.lnf_mean, a.lnf_rstd, B, T, C);
    return true;
}

// All L blocks, last to first, through the one set of activation-gradient buffers; afterwards
// grads_acts.residual holds the embedding's gradient. After block l, layer_done(l): that
// layer's parameter gradients are final (the CUDA trainer starts their all-reduce there).
// False when a fault survived a GEMM's recomputation (the caller redoes the whole step, which
// writes every buffer anew).
template <typename LayerDone>
static bool blocks_backward(GPT2* model, LayerDone layer_done) {
    for (int l = model->config.num_layers - 1; l >= 0; l--) {
        if (!block_backward(model, l)) { return false; }
        layer_done(l);
    }
    return true;
}
