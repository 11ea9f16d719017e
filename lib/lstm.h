/* The LSTM cell of MODEL.md §3.2 (no peepholes, gates i, f, g, o as in
 * PyTorch, one bias), batched. The matrix products that make the gate
 * pre-activations are the caller's (one or two sgemms over the batch, see
 * lib/forward.c); this module is the elementwise part on either side of
 * them.
 *
 * Layout: gates [B×4S], row b = (i, f, g, o), each S wide, matching the
 * rows of weight_ih [4S×in] and weight_hh [4S×S]. */
#ifndef DCRW_LIB_LSTM_H
#define DCRW_LIB_LSTM_H

/* gates: in = the matrix products of the pre-activations, to which row b of
 * add (add + b·ld_add: ld_add = 0 broadcasts one bias vector of 4S, ld_add =
 * 4S adds a per-row term such as a hoisted input product) is added, giving
 * q; out = σ(q_i), σ(q_f), tanh(q_g), σ(q_o). Folding the bias in here saves
 * writing it into the gates before the sgemm adds onto it.
 * s = f⊙s_prev + i⊙g; tanh_s = tanh(s); h = o⊙tanh_s. No pointer may be
 * NULL (the first step passes a zero state): the loops stay branch-free.
 * Everything the backward needs (gates, s_prev, tanh_s) stays in place. */
void dcrw_lstm_cell_forward(int B, int S, float *gates, const float *add, int ld_add,
                            const float *s_prev, float *s, float *tanh_s, float *h);

/* Backward of dcrw_lstm_cell_forward. dh [B×S] is dL/dh_t. ds [B×S] holds dL/ds_t
 * from the later steps on entry and dL/ds_{t-1} on return. gates: in = the
 * forward's activated gates, out = dL/dq, the pre-activation gradient, ready
 * for the weight and input products. No pointer may be NULL. */
void dcrw_lstm_cell_backward(int B, int S, float *gates, const float *s_prev, const float *tanh_s,
                             const float *dh, float *ds);

#endif
