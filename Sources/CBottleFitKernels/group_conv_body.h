/* Direct convolution of one group (depthwise: one input and one output channel; grouped:
   RegNet's 8 and 8), for one instruction set: included by group_conv.c with BF_TARGET and
   BF_NAME defined (no include guard on purpose).

   The group's input is copied once into a zero-padded buffer whose rows are split into their
   column phases (stride_width of them), so that for every tap the 16 outputs of a vector read
   16 contiguous floats: no bounds checks, no gathers. Then each block of up to 8 output
   channels x 16·NB output columns keeps its sums in registers over all taps, and is finished
   (+ bias, + residual, activation) and stored once. */

#define BF_FN static inline __attribute__((always_inline)) BF_TARGET

/* Copies the group's cg input planes into the padded, phase-split buffer: each phase row takes
   every stride-th input column (no division per element), and only the floats around what
   it takes are zeroed. Built per instruction set too: the strided copies vectorise. */
BF_FN void BF_NAME(pad_group)(const bf_group_plan *p, const float *x, float *padded) {
    const bottlefit_depthwise_geometry *g = p->g;
    ptrdiff_t sw = g->stride_width, iw = g->input_width, ih = g->input_height, pf = p->phase_floats;
    /* Input column ix is padded column ix + pad_left: phase (ix + pad_left) % sw, at
       (ix + pad_left) / sw. Per phase, the first input column it takes, where that lands and
       how many it takes: the same for every row (no division per row). */
    ptrdiff_t firsts[sw], ats[sw], counts[sw];
    for (ptrdiff_t phase = 0; phase < sw; phase++) {
        ptrdiff_t first = ((phase - g->pad_left) % sw + sw) % sw;
        ptrdiff_t at = (first + g->pad_left) / sw;
        ptrdiff_t count = first < iw ? bf_max(0, bf_min((iw - first + sw - 1) / sw, pf - at)) : 0;
        firsts[phase] = first;
        ats[phase] = count == 0 ? 0 : at;
        counts[phase] = count;
    }
    for (ptrdiff_t c = 0; c < p->cg; c++) {
        for (ptrdiff_t r = 0; r < p->rows; r++) {
            float *dst = padded + (c * p->rows + r) * p->row_floats;
            ptrdiff_t iy = r - g->pad_top;
            if (iy < 0 || iy >= ih) {
                for (ptrdiff_t i = 0; i < p->row_floats; i++) dst[i] = 0.0f;
                continue;
            }
            const float *src = x + (c * ih + iy) * iw;
            for (ptrdiff_t phase = 0; phase < sw; phase++) {
                float *row = dst + phase * pf;
                ptrdiff_t at = ats[phase], count = counts[phase];
                const float *s = src + firsts[phase];
                for (ptrdiff_t j = 0; j < at; j++) row[j] = 0.0f;
                if (sw == 1) {
                    for (ptrdiff_t j = 0; j < count; j++) row[at + j] = s[j];
                } else if (sw == 2) {
                    for (ptrdiff_t j = 0; j < count; j++) row[at + j] = s[2 * j];
                } else {
                    for (ptrdiff_t j = 0; j < count; j++) row[at + j] = s[j * sw];
                }
                for (ptrdiff_t j = at + count; j < pf; j++) row[j] = 0.0f;
            }
        }
    }
}

/* Stores the first `lanes` (< 16) of x + residual, activated, at `out` (`res` may be NULL):
   the whole vector through the activation, then a masked store with AVX-512 or a copy of
   the lanes. */
BF_FN void BF_NAME(store_partial)(float *out, const float *res, const bf_v16 *px, ptrdiff_t lanes, const bottlefit_activation *act) {
    bf_v16 x = *px;
#if BF_WIDE
    __mmask16 mask = (__mmask16)((1u << lanes) - 1u);
    if (res) x += (bf_v16)_mm512_maskz_loadu_ps(mask, res);
    bf_activate16(&x, act);
    _mm512_mask_storeu_ps(out, mask, (__m512)x);
#else
    float t[16];
    for (ptrdiff_t j = 0; j < 16; j++) t[j] = res && j < lanes ? res[j] : 0.0f;
    x += BF_LOAD16(t);
    bf_activate16(&x, act);
    BF_STORE16(t, x);
    for (ptrdiff_t j = 0; j < lanes; j++) out[j] = t[j];
#endif
}

/* nb vectors of sums of one output row, finished (+ bias, + residual, activation) and stored
   at `out`; the last one has `valid` lanes. */
BF_FN void BF_NAME(store_row)(
    float *out, const float *res, const bf_v16 *sums, const int nb, ptrdiff_t valid, const bf_v16 *vb,
    const bottlefit_activation *act) {
    for (int b = 0; b < nb; b++) {
        bf_v16 x = sums[b] + *vb;
        ptrdiff_t lanes = b == nb - 1 ? valid : 16;
        if (lanes == 16) {
            if (res) x += BF_LOAD16(res + 16 * b);
            bf_activate16(&x, act);
            BF_STORE16(out + 16 * b, x);
        } else {
            BF_NAME(store_partial)(out + 16 * b, res ? res + 16 * b : NULL, &x, lanes, act);
        }
    }
}

/* Output columns ox0..<ox0 + 16·nb of row oy, channels m0..<m0 + mb (mb, nb constants once
   inlined, so the sums stay in registers). `valid` of the last vector's lanes are stored. */
BF_FN void BF_NAME(group_block)(
    const bf_group_plan *p, const float *padded, const float *w, ptrdiff_t m0, ptrdiff_t oy, ptrdiff_t ox0, const int mb,
    const int nb, ptrdiff_t valid, const float *bias, const float *residual, float *y, const bottlefit_activation *act) {
    const bottlefit_depthwise_geometry *g = p->g;
    bf_v16 acc[8][4];
    for (int m = 0; m < mb; m++)
        for (int b = 0; b < nb; b++) acc[m][b] = 0.0f;
    ptrdiff_t kh = g->kernel_height, kw = g->kernel_width, taps = kh * kw;
    for (ptrdiff_t c = 0; c < p->cg; c++) {
        for (ptrdiff_t ky = 0; ky < kh; ky++) {
            const float *row = padded + (c * p->rows + oy * g->stride_height + ky * g->dilation_height) * p->row_floats + ox0;
            const float *wt = w + (m0 * p->cg + c) * taps + ky * kw;
            for (ptrdiff_t kx = 0; kx < kw; kx++) {
                const float *src = row + p->tap_offsets[kx];
                bf_v16 v[4];
                for (int b = 0; b < nb; b++) v[b] = BF_LOAD16(src + 16 * b);
                for (int m = 0; m < mb; m++) {
                    bf_v16 s = wt[m * p->cg * taps + kx];
                    for (int b = 0; b < nb; b++) acc[m][b] = BF_FMA(s, v[b], acc[m][b]);
                }
            }
        }
    }
    ptrdiff_t ow = g->output_width;
    for (int m = 0; m < mb; m++) {
        bf_v16 vb = bias ? bias[m0 + m] : 0.0f;
        float *out = y + (m0 + m) * p->output_plane + oy * ow + ox0;
        const float *res = residual ? residual + (m0 + m) * p->output_plane + oy * ow + ox0 : NULL;
        BF_NAME(store_row)(out, res, acc[m], nb, valid, &vb, act);
    }
}

/* Every output row of channels m0..<m0 + mb (mb constant once inlined): whole groups of
   16·nb columns, then pairs, then single vectors (the last one partial). */
BF_FN void BF_NAME(group_rows)(
    const bf_group_plan *p, const float *padded, const float *w, ptrdiff_t m0, const int mb, const int nb,
    const float *bias, const float *residual, float *y, const bottlefit_activation *act) {
    ptrdiff_t ow = p->g->output_width;
    for (ptrdiff_t oy = 0; oy < p->output_height; oy++) {
        ptrdiff_t ox = 0;
        if (nb > 1)
            for (; ox + 16 * nb <= ow; ox += 16 * nb) BF_NAME(group_block)(p, padded, w, m0, oy, ox, mb, nb, 16, bias, residual, y, act);
        /* Two independent sums rather than one where two vectors are left (one sum is a chain
           of dependent FMAs). */
        if (nb > 2)
            for (; ox + 32 <= ow; ox += 32) BF_NAME(group_block)(p, padded, w, m0, oy, ox, mb, 2, 16, bias, residual, y, act);
        for (; ox < ow; ox += 16)
            BF_NAME(group_block)(p, padded, w, m0, oy, ox, mb, 1, bf_min(16, ow - ox), bias, residual, y, act);
    }
}

/* Output rows oy0..<oy0 + nr, columns ox0..<ox0 + 16·nb, of a group with a single output
   channel (depthwise): nr·nb independent sums (nr, nb constants once inlined). Blocking rows
   rather than channels keeps enough FMAs in flight on narrow maps: a 14-wide row is one
   vector, whose 9 taps alone are a chain of dependent FMAs. */
BF_FN void BF_NAME(single_block)(
    const bf_group_plan *p, const float *padded, const float *w, ptrdiff_t oy0, const int nr, ptrdiff_t ox0, const int nb,
    ptrdiff_t valid, const float *bias, const float *residual, float *y, const bottlefit_activation *act) {
    const bottlefit_depthwise_geometry *g = p->g;
    bf_v16 acc[8][4];
    for (int r = 0; r < nr; r++)
        for (int b = 0; b < nb; b++) acc[r][b] = 0.0f;
    ptrdiff_t kh = g->kernel_height, kw = g->kernel_width, taps = kh * kw;
    ptrdiff_t row_step = g->stride_height * p->row_floats;
    for (ptrdiff_t c = 0; c < p->cg; c++) {
        for (ptrdiff_t ky = 0; ky < kh; ky++) {
            const float *row = padded + (c * p->rows + oy0 * g->stride_height + ky * g->dilation_height) * p->row_floats + ox0;
            const float *wt = w + c * taps + ky * kw;
            for (ptrdiff_t kx = 0; kx < kw; kx++) {
                const float *src = row + p->tap_offsets[kx];
                bf_v16 s = wt[kx];
                for (int r = 0; r < nr; r++)
                    for (int b = 0; b < nb; b++) acc[r][b] = BF_FMA(s, BF_LOAD16(src + r * row_step + 16 * b), acc[r][b]);
            }
        }
    }
    ptrdiff_t ow = g->output_width;
    bf_v16 vb = bias ? bias[0] : 0.0f;
    for (int r = 0; r < nr; r++) {
        float *out = y + (oy0 + r) * ow + ox0;
        const float *res = residual ? residual + (oy0 + r) * ow + ox0 : NULL;
        BF_NAME(store_row)(out, res, acc[r], nb, valid, &vb, act);
    }
}

/* Rows oy0..<oy0 + nr of a single-channel group, all columns: blocks of 16·nb, then single
   vectors (the last one partial). */
BF_FN void BF_NAME(single_strip)(
    const bf_group_plan *p, const float *padded, const float *w, ptrdiff_t oy0, const int nr, const int nb,
    const float *bias, const float *residual, float *y, const bottlefit_activation *act) {
    ptrdiff_t ow = p->g->output_width, ox = 0;
    if (nb > 1)
        for (; ox + 16 * nb <= ow; ox += 16 * nb) BF_NAME(single_block)(p, padded, w, oy0, nr, ox, nb, 16, bias, residual, y, act);
    for (; ox < ow; ox += 16)
        BF_NAME(single_block)(p, padded, w, oy0, nr, ox, 1, bf_min(16, ow - ox), bias, residual, y, act);
}

/* Every row of a single-channel group in strips of nr rows, then the rows left over. */
BF_FN void BF_NAME(single_rows)(
    const bf_group_plan *p, const float *padded, const float *w, const int nr, const int nb, const float *bias,
    const float *residual, float *y, const bottlefit_activation *act) {
    ptrdiff_t oh = p->output_height, oy = 0;
    for (; oy + nr <= oh; oy += nr) BF_NAME(single_strip)(p, padded, w, oy, nr, nb, bias, residual, y, act);
    if (nr > 4)
        for (; oy + 4 <= oh; oy += 4) BF_NAME(single_strip)(p, padded, w, oy, 4, nb, bias, residual, y, act);
    if (nr > 2)
        for (; oy + 2 <= oh; oy += 2) BF_NAME(single_strip)(p, padded, w, oy, 2, nb, bias, residual, y, act);
    for (; oy < oh; oy++) BF_NAME(single_strip)(p, padded, w, oy, 1, nb, bias, residual, y, act);
}

#if BF_AVX2 || BF_WIDE
/* AVX2 (and the AVX-512 build, which runs the same 8-float code: see `group_conv`), stride 1 or
   2 across, any group (depthwise or RegNet's 8 and 8): each output row in
   chunks of 8 columns, read straight from the input planes with no padded copy. Lane i of a
   chunk at column ox0 takes tap kx from input column s·(ox0 + i) + kx·dilation - pad_left:
   with stride 1 one 8-float load, with stride 2 the even lanes of a 16-float load. A chunk
   whose taps may fall left or right of the input row loads through a mask (masked-off lanes
   read zero and never fault); one inside the row loads plainly. An input row above or below
   the plane is `zeros`. The 16-float padded path copied the group's input per group and
   stored a partial vector a float at a time: on MobileNetV2's 7x7 and 14x14 maps that took
   4-8x ORT's time at one thread. */

/* Lanes i of 8 with 0 <= first + i < limit, as an AVX2 mask. */
BF_FN __m256i BF_NAME(lanes8)(ptrdiff_t first, ptrdiff_t limit) {
    __m256i at = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)first));
    __m256i above = _mm256_cmpgt_epi32(at, _mm256_set1_epi32(-1));
    __m256i below = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)limit), at);
    return _mm256_and_si256(above, below);
}

/* The 8 floats tap input columns at..<at + 8·stride give one chunk (stride 1 or 2, a
   constant once inlined): masked by m0 (and m1 for the second 8 with stride 2) unless
   `masked` is 0. */
BF_FN __m256 BF_NAME(tap8)(const float *row, ptrdiff_t at, const int stride, const int masked, __m256i m0, __m256i m1) {
    if (stride == 1) return masked ? _mm256_maskload_ps(row + at, m0) : _mm256_loadu_ps(row + at);
    __m256 lo = masked ? _mm256_maskload_ps(row + at, m0) : _mm256_loadu_ps(row + at);
    __m256 hi = masked ? _mm256_maskload_ps(row + at + 8, m1) : _mm256_loadu_ps(row + at + 8);
    /* The even lanes, in the order (lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6): output columns
       0 1 4 5 2 3 6 7 of the chunk. Every tap has that order, so the sums are put back in
       column order once, when stored (`in_order`), not per tap. */
    return _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
}

/* Sums of a stride-2 chunk (columns 0 1 4 5 2 3 6 7, see `tap8`) in column order. */
BF_FN __m256 BF_NAME(in_order)(__m256 v, const int stride) {
    if (stride == 1) return v;
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* What every block of one call shares. */
typedef struct BF_NAME(chunk_job) {
    const bf_group_plan *p;
    const float *x, *zeros, *w, *bias, *residual;
    float *y;
    const bottlefit_activation *act;
} BF_NAME(chunk_job);

BF_FN void BF_NAME(chunk_finish)(
    const BF_NAME(chunk_job) *job, ptrdiff_t m0, const int mb, ptrdiff_t oy0, const int nr, const ptrdiff_t *ox, const int nc,
    const int stride, __m256 acc[4][8][2]);

/* Output channels m0..<m0 + mb, rows oy0..<oy0 + nr, nc chunks (1 or 2) starting at output
   columns ox[0] and ox[1] (mb, nr, nc, stride and masked constants once inlined: mb·nr·nc sums
   in registers), over every input channel of the group and every tap, finished (+ bias,
   + residual, activation) and stored. Two chunks of one block may overlap (a 14-wide row is
   chunks 0 and 6): both are computed before either is stored, so the columns they share get
   the same values. A chunk wider than the row (ow < 8) is stored whole where its
   spare lanes fall on later rows of the same plane that this thread stores afterwards (no
   residual to read there), else through a mask: AMD's masked store is microcoded (about 3x a
   plain one), and on 7x7 maps every row ended in one. */
BF_FN void BF_NAME(chunk_block)(
    const BF_NAME(chunk_job) *job, ptrdiff_t m0, const int mb, ptrdiff_t oy0, const int nr, const ptrdiff_t *ox, const int nc,
    const int stride, const int masked) {
    const bf_group_plan *p = job->p;
    const bottlefit_depthwise_geometry *g = p->g;
    ptrdiff_t kh = g->kernel_height, kw = g->kernel_width, ih = g->input_height, iw = g->input_width;
    ptrdiff_t taps = kh * kw, cg = p->cg;
    __m256 acc[4][8][2];
    for (int m = 0; m < mb; m++)
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < nc; c++) acc[m][r][c] = _mm256_setzero_ps();
    for (ptrdiff_t ci = 0; ci < cg; ci++) {
        const float *plane = job->x + ci * ih * iw;
        const float *wc = job->w + (m0 * cg + ci) * taps;
        for (ptrdiff_t ky = 0; ky < kh; ky++) {
            const float *rows[8];
            for (int r = 0; r < nr; r++) {
                ptrdiff_t iy = (oy0 + r) * g->stride_height + ky * g->dilation_height - g->pad_top;
                rows[r] = iy >= 0 && iy < ih ? plane + iy * iw : job->zeros;
            }
            for (ptrdiff_t kx = 0; kx < kw; kx++) {
                ptrdiff_t offset = kx * g->dilation_width - g->pad_left;
                /* The masks are worked out per tap: held in memory per block they cost a load
                   each, and this loop is bound by its loads (56x56 maps 7% slower). */
                __m256i mask[2][2];
                for (int c = 0; c < nc; c++) {
                    ptrdiff_t at = ox[c] * stride + offset;
                    if (masked) {
                        mask[c][0] = BF_NAME(lanes8)(at, iw);
                        mask[c][1] = BF_NAME(lanes8)(at + 8, iw);
                    } else {
                        mask[c][0] = mask[c][1] = _mm256_setzero_si256();
                    }
                }
                __m256 s[4];
                for (int m = 0; m < mb; m++) s[m] = _mm256_broadcast_ss(wc + m * cg * taps + ky * kw + kx);
                for (int r = 0; r < nr; r++)
                    for (int c = 0; c < nc; c++) {
                        ptrdiff_t at = ox[c] * stride + offset;
                        __m256 v = BF_NAME(tap8)(rows[r], at, stride, masked, mask[c][0], mask[c][1]);
                        for (int m = 0; m < mb; m++) acc[m][r][c] = _mm256_fmadd_ps(s[m], v, acc[m][r][c]);
                    }
            }
        }
    }
    BF_NAME(chunk_finish)(job, m0, mb, oy0, nr, ox, nc, stride, acc);
}

/* The sums of a block (see `chunk_block`) + bias, + residual, activated, stored. */
BF_FN void BF_NAME(chunk_finish)(
    const BF_NAME(chunk_job) *job, ptrdiff_t m0, const int mb, ptrdiff_t oy0, const int nr, const ptrdiff_t *ox, const int nc,
    const int stride, __m256 acc[4][8][2]) {
    const bf_group_plan *p = job->p;
    ptrdiff_t ow = p->g->output_width, oh = p->output_height;
    /* Only a single chunk can be wider than what is left of the row (ow < 8, or a last chunk
       that could not overlap its neighbour). */
    int partial = ox[nc - 1] + 8 > ow;
    __m256i store = BF_NAME(lanes8)(ox[nc - 1], ow);
    for (int m = 0; m < mb; m++) {
        __m256 vb = _mm256_set1_ps(job->bias ? job->bias[m0 + m] : 0.0f);
        for (int r = 0; r < nr; r++) {
            ptrdiff_t row = (m0 + m) * p->output_plane + (oy0 + r) * ow;
            __m256 v[2];
            for (int c = 0; c < nc; c++) {
                v[c] = _mm256_add_ps(BF_NAME(in_order)(acc[m][r][c], stride), vb);
                if (job->residual) {
                    const float *res = job->residual + row + ox[c];
                    int last = c == nc - 1 && partial;
                    v[c] = _mm256_add_ps(v[c], last ? _mm256_maskload_ps(res, store) : _mm256_loadu_ps(res));
                }
            }
            /* The activation on 16 lanes: the chunks side by side (one chunk twice). */
            bf_v16 both = __builtin_shufflevector((bf_v8)v[0], (bf_v8)v[nc - 1], 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            bf_activate16(&both, job->act);
            v[0] = (__m256)__builtin_shufflevector(both, both, 0, 1, 2, 3, 4, 5, 6, 7);
            v[nc - 1] = (__m256)__builtin_shufflevector(both, both, 8, 9, 10, 11, 12, 13, 14, 15);
            for (int c = 0; c < nc; c++) {
                float *out = job->y + row + ox[c];
                /* Spare lanes past the row land on the next rows of this plane, stored later. */
                int spills_safely = !job->residual && (oy0 + r) * ow + ox[c] + 8 <= oh * ow;
                if (c == nc - 1 && partial && !spills_safely) _mm256_maskstore_ps(out, store, v[c]);
                else _mm256_storeu_ps(out, v[c]);
            }
        }
    }
}

/* Every output row of channels m0..<m0 + mb, chunks at ox[0..<nc]: blocks of rows (with one
   channel 8 rows of one chunk or 4 of two, else 2), then 2 and 1, in increasing row order. */
BF_FN void BF_NAME(chunk_rows)(
    const BF_NAME(chunk_job) *job, ptrdiff_t m0, const int mb, const ptrdiff_t *ox, const int nc, const int stride,
    const int masked) {
    ptrdiff_t oh = job->p->output_height, oy = 0;
    if (mb == 1 && nc == 1)
        for (; oy + 8 <= oh; oy += 8) BF_NAME(chunk_block)(job, m0, 1, oy, 8, ox, 1, stride, masked);
    if (mb == 1)
        for (; oy + 4 <= oh; oy += 4) BF_NAME(chunk_block)(job, m0, 1, oy, 4, ox, nc, stride, masked);
    for (; oy + 2 <= oh; oy += 2) BF_NAME(chunk_block)(job, m0, mb, oy, 2, ox, nc, stride, masked);
    for (; oy < oh; oy++) BF_NAME(chunk_block)(job, m0, mb, oy, 1, ox, nc, stride, masked);
}

/* Channels m0..<m0 + mb, chunks starting at output columns x0 and (nc = 2) x1, plain loads
   where every tap of the chunks falls inside the input row, else masked. */
BF_FN void BF_NAME(chunk_columns)(
    const BF_NAME(chunk_job) *job, ptrdiff_t m0, const int mb, ptrdiff_t x0, ptrdiff_t x1, const int nc, const int stride) {
    const bottlefit_depthwise_geometry *g = job->p->g;
    ptrdiff_t ox[2] = {x0, nc == 2 ? x1 : x0};
    /* Input columns the loads touch: from s·x0 + the leftmost tap to s·(last chunk + 7) +
       the rightmost, and with stride 2 the odd lane after it. */
    ptrdiff_t lo = stride * x0 - g->pad_left;
    ptrdiff_t hi = stride * (ox[1] + 7) + (g->kernel_width - 1) * g->dilation_width - g->pad_left + (stride - 1);
    if (lo >= 0 && hi < g->input_width) BF_NAME(chunk_rows)(job, m0, mb, ox, nc, stride, 0);
    else BF_NAME(chunk_rows)(job, m0, mb, ox, nc, stride, 1);
}

/* A 3x3, unstrided, undilated depthwise convolution without a residual (most of MobileNet's
   and EfficientNet's): rows oy0..<oy0 + nr of one chunk at ox0, the nine weights held in
   registers (nine, nr ≤ 6 sums and the input vector: 16 YMM), each input row loaded once per
   kx and added into the up to three output rows it feeds. `chunk_block` loads every input
   row once per (output row, ky): 9 loads per output vector against (nr + 2)·3/nr here (4 for
   nr = 6), and its loop is bound by its loads. */
BF_FN void BF_NAME(dw3_block)(const BF_NAME(chunk_job) *job, ptrdiff_t oy0, const int nr, ptrdiff_t ox0, const int masked) {
    const bottlefit_depthwise_geometry *g = job->p->g;
    ptrdiff_t ih = g->input_height, iw = g->input_width;
    __m256 w[9];
    for (int i = 0; i < 9; i++) w[i] = _mm256_broadcast_ss(job->w + i);
    __m256 acc[4][8][2];
    for (int r = 0; r < nr; r++) acc[0][r][0] = _mm256_setzero_ps();
    /* Unrolled whole (nr is a constant at every call), so that every sum has a register. */
#pragma clang loop unroll(full)
    for (int i = 0; i < nr + 2; i++) {
        ptrdiff_t iy = oy0 + i - g->pad_top;
        const float *row = iy >= 0 && iy < ih ? job->x + iy * iw : job->zeros;
        for (int kx = 0; kx < 3; kx++) {
            ptrdiff_t at = ox0 + kx - g->pad_left;
            __m256i mask = masked ? BF_NAME(lanes8)(at, iw) : _mm256_setzero_si256();
            __m256 v = BF_NAME(tap8)(row, at, 1, masked, mask, mask);
            for (int ky = 0; ky < 3; ky++) {
                int r = i - ky;
                if (r >= 0 && r < nr) acc[0][r][0] = _mm256_fmadd_ps(w[ky * 3 + kx], v, acc[0][r][0]);
            }
        }
    }
    ptrdiff_t ox[2] = {ox0, ox0};
    BF_NAME(chunk_finish)(job, 0, 1, oy0, nr, ox, 1, 1, acc);
}

/* The same for stride 2 (MobileNet's and EfficientNet's downsampling layers): rows oy0..<oy0
   + nr (nr ≤ 4) of one chunk. Input row i of the block feeds output rows (i - ky) / 2 for the
   ky of its parity; per row one pair of loads gives taps kx = 0 and 1 (its even and odd
   lanes) and a second pair, two columns on, tap 2: 4 loads for 3 taps, against `chunk_block`'s
   2 per tap per output row. The sums come in `tap8`'s lane order (`chunk_finish` restores it). */
BF_FN void BF_NAME(dw3s2_block)(const BF_NAME(chunk_job) *job, ptrdiff_t oy0, const int nr, ptrdiff_t ox0, const int masked) {
    const bottlefit_depthwise_geometry *g = job->p->g;
    ptrdiff_t ih = g->input_height, iw = g->input_width;
    __m256 w[9];
    for (int i = 0; i < 9; i++) w[i] = _mm256_broadcast_ss(job->w + i);
    __m256 acc[4][8][2];
    for (int r = 0; r < nr; r++) acc[0][r][0] = _mm256_setzero_ps();
    ptrdiff_t at = 2 * ox0 - g->pad_left;
    __m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0, m3 = m0;
    if (masked) {
        m0 = BF_NAME(lanes8)(at, iw);
        m1 = BF_NAME(lanes8)(at + 8, iw);
        m2 = BF_NAME(lanes8)(at + 2, iw);
        m3 = BF_NAME(lanes8)(at + 10, iw);
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < 2 * nr + 1; i++) {
        ptrdiff_t iy = 2 * oy0 + i - g->pad_top;
        const float *row = iy >= 0 && iy < ih ? job->x + iy * iw : job->zeros;
        __m256 lo = masked ? _mm256_maskload_ps(row + at, m0) : _mm256_loadu_ps(row + at);
        __m256 hi = masked ? _mm256_maskload_ps(row + at + 8, m1) : _mm256_loadu_ps(row + at + 8);
        __m256 t0 = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
        __m256 t1 = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
        for (int ky = i % 2; ky < 3; ky += 2) {
            int r = (i - ky) / 2;
            if (r >= 0 && r < nr) {
                acc[0][r][0] = _mm256_fmadd_ps(w[ky * 3], t0, acc[0][r][0]);
                acc[0][r][0] = _mm256_fmadd_ps(w[ky * 3 + 1], t1, acc[0][r][0]);
            }
        }
        __m256 lo2 = masked ? _mm256_maskload_ps(row + at + 2, m2) : _mm256_loadu_ps(row + at + 2);
        __m256 hi2 = masked ? _mm256_maskload_ps(row + at + 10, m3) : _mm256_loadu_ps(row + at + 10);
        __m256 t2 = _mm256_shuffle_ps(lo2, hi2, _MM_SHUFFLE(2, 0, 2, 0));
        for (int ky = i % 2; ky < 3; ky += 2) {
            int r = (i - ky) / 2;
            if (r >= 0 && r < nr) acc[0][r][0] = _mm256_fmadd_ps(w[ky * 3 + 2], t2, acc[0][r][0]);
        }
    }
    ptrdiff_t ox[2] = {ox0, ox0};
    BF_NAME(chunk_finish)(job, 0, 1, oy0, nr, ox, 1, 2, acc);
}

/* A 5x5 undilated depthwise convolution without a residual (MobileNetV3's and EfficientNet's
   5x5 layers), stride 1 or 2 (a constant once inlined): rows oy0..<oy0 + nr of one chunk at
   ox0, a column of taps at a time. The five weights of column kx are held in registers and each
   input row of the block is loaded once for that column (with stride 2 a 16-float pair and a
   shuffle, `tap8`) and added into every output row it feeds: 5·(s·(nr - 1) + 5) loads (pairs)
   and 25 broadcasts per block, against `chunk_block`'s 25·nr and 25 (stride 1, nr = 8: 85
   loads for 200 FMAs instead of 225). Registers: nr ≤ 8 sums, five weights, the input vector
   and its mask (15 YMM); with stride 2, nr ≤ 4, two loads and two masks. */
BF_FN void BF_NAME(dw5_block)(
    const BF_NAME(chunk_job) *job, ptrdiff_t oy0, const int nr, ptrdiff_t ox0, const int stride, const int masked) {
    const bottlefit_depthwise_geometry *g = job->p->g;
    ptrdiff_t ih = g->input_height, iw = g->input_width;
    __m256 acc[4][8][2];
    for (int r = 0; r < nr; r++) acc[0][r][0] = _mm256_setzero_ps();
    const int inputs = stride * (nr - 1) + 5;
    const float *rows[16];
#pragma clang loop unroll(full)
    for (int i = 0; i < inputs; i++) {
        ptrdiff_t iy = stride * oy0 + i - g->pad_top;
        rows[i] = iy >= 0 && iy < ih ? job->x + iy * iw : job->zeros;
    }
    for (int kx = 0; kx < 5; kx++) {
        ptrdiff_t at = stride * ox0 + kx - g->pad_left;
        __m256i m0 = _mm256_setzero_si256(), m1 = m0;
        if (masked) {
            m0 = BF_NAME(lanes8)(at, iw);
            if (stride == 2) m1 = BF_NAME(lanes8)(at + 8, iw);
        }
        __m256 w[5];
        for (int ky = 0; ky < 5; ky++) w[ky] = _mm256_broadcast_ss(job->w + ky * 5 + kx);
        /* Unrolled whole (nr and stride are constants at every call): every sum has a register. */
#pragma clang loop unroll(full)
        for (int i = 0; i < inputs; i++) {
            __m256 v = BF_NAME(tap8)(rows[i], at, stride, masked, m0, m1);
            for (int ky = 0; ky < 5; ky++) {
                int d = i - ky;
                if (d >= 0 && d % stride == 0 && d / stride < nr)
                    acc[0][d / stride][0] = _mm256_fmadd_ps(w[ky], v, acc[0][d / stride][0]);
            }
        }
    }
    ptrdiff_t ox[2] = {ox0, ox0};
    BF_NAME(chunk_finish)(job, 0, 1, oy0, nr, ox, 1, stride, acc);
}

/* Every output row of one chunk of a `dw5_block` convolution: blocks of 8 rows (stride 2: 4),
   then the rest as one block (a 14-row map is 8 + 6, a 7-row one 4 + 3). */
BF_FN void BF_NAME(dw5_rows)(const BF_NAME(chunk_job) *job, ptrdiff_t ox0, const int stride, const int masked) {
    ptrdiff_t oh = job->p->output_height, oy = 0;
    if (stride == 2) {
        for (; oy + 4 <= oh; oy += 4) BF_NAME(dw5_block)(job, oy, 4, ox0, 2, masked);
        switch (oh - oy) {
        case 3: BF_NAME(dw5_block)(job, oy, 3, ox0, 2, masked); break;
        case 2: BF_NAME(dw5_block)(job, oy, 2, ox0, 2, masked); break;
        case 1: BF_NAME(dw5_block)(job, oy, 1, ox0, 2, masked); break;
        default: break;
        }
        return;
    }
    for (; oy + 8 <= oh; oy += 8) BF_NAME(dw5_block)(job, oy, 8, ox0, 1, masked);
    switch (oh - oy) {
    case 7: BF_NAME(dw5_block)(job, oy, 7, ox0, 1, masked); break;
    case 6: BF_NAME(dw5_block)(job, oy, 6, ox0, 1, masked); break;
    case 5: BF_NAME(dw5_block)(job, oy, 5, ox0, 1, masked); break;
    case 4: BF_NAME(dw5_block)(job, oy, 4, ox0, 1, masked); break;
    case 3: BF_NAME(dw5_block)(job, oy, 3, ox0, 1, masked); break;
    case 2: BF_NAME(dw5_block)(job, oy, 2, ox0, 1, masked); break;
    case 1: BF_NAME(dw5_block)(job, oy, 1, ox0, 1, masked); break;
    default: break;
    }
}

/* Every output row of one chunk of a `dw3_block` convolution, in blocks of 6, 4, 2, 1 rows. */
BF_FN void BF_NAME(dw3_rows)(const BF_NAME(chunk_job) *job, ptrdiff_t ox0, const int masked) {
    ptrdiff_t oh = job->p->output_height, oy = 0;
    if (job->p->g->stride_width == 2) {
        for (; oy + 4 <= oh; oy += 4) BF_NAME(dw3s2_block)(job, oy, 4, ox0, masked);
        for (; oy + 2 <= oh; oy += 2) BF_NAME(dw3s2_block)(job, oy, 2, ox0, masked);
        for (; oy < oh; oy++) BF_NAME(dw3s2_block)(job, oy, 1, ox0, masked);
        return;
    }
    for (; oy + 6 <= oh; oy += 6) BF_NAME(dw3_block)(job, oy, 6, ox0, masked);
    for (; oy + 4 <= oh; oy += 4) BF_NAME(dw3_block)(job, oy, 4, ox0, masked);
    for (; oy + 2 <= oh; oy += 2) BF_NAME(dw3_block)(job, oy, 2, ox0, masked);
    for (; oy < oh; oy++) BF_NAME(dw3_block)(job, oy, 1, ox0, masked);
}

/* Whether `dw3_block` (3x3) or `dw5_block` (5x5) takes this group. */
BF_FN int BF_NAME(takes_dw)(const BF_NAME(chunk_job) *job) {
    const bf_group_plan *p = job->p;
    const bottlefit_depthwise_geometry *g = p->g;
    int stride = g->stride_width, k = g->kernel_width;
    return p->cg == 1 && p->mg == 1 && !job->residual && (k == 3 || k == 5) && g->kernel_height == k &&
           (stride == 1 || stride == 2) && g->stride_height == stride && g->dilation_height == 1 && g->dilation_width == 1;
}

/* A `dw3_block` or `dw5_block` convolution: chunks of 8 columns, the last one moved back to end
   at the row's end (its columns recomputed and stored again with the same values; there is no
   residual), or for a row narrower than 8 one partial chunk. */
BF_FN void BF_NAME(dw)(const BF_NAME(chunk_job) *job) {
    const bottlefit_depthwise_geometry *g = job->p->g;
    ptrdiff_t ow = g->output_width, iw = g->input_width, k = g->kernel_width;
    for (ptrdiff_t ox0 = 0; ox0 < ow; ox0 += 8) {
        ptrdiff_t at = ox0 + 8 > ow && ow >= 8 ? ow - 8 : ox0;
        /* Input columns the loads touch (with stride 2 up to the odd lane after the last tap's). */
        ptrdiff_t s = g->stride_width;
        ptrdiff_t lo = s * at - g->pad_left, hi = s * (at + 7) + (k - 1) - g->pad_left + (s - 1);
        int masked = !(lo >= 0 && hi < iw);
        if (k == 3) {
            if (masked) BF_NAME(dw3_rows)(job, at, 1);
            else BF_NAME(dw3_rows)(job, at, 0);
        } else if (s == 1) {
            if (masked) BF_NAME(dw5_rows)(job, at, 1, 1);
            else BF_NAME(dw5_rows)(job, at, 1, 0);
        } else {
            if (masked) BF_NAME(dw5_rows)(job, at, 2, 1);
            else BF_NAME(dw5_rows)(job, at, 2, 0);
        }
    }
}

/* The whole group. With one output channel, chunk pairs; the row's last 9 to 15 columns as a
   pair that overlaps (chunks ow - 16 + k and ow - 8), so no chunk but on rows narrower than 8
   is partial. With more, blocks of 4 output channels (then 2, 1) by one chunk, the last
   chunk moved back to end at the row's end where that recomputes columns already stored
   (identical values; not with a residual, which those stores may have overwritten). */
BF_FN void BF_NAME(chunked_stride)(const BF_NAME(chunk_job) *job, const int stride) {
    ptrdiff_t ow = job->p->g->output_width, mg = job->p->mg;
    for (ptrdiff_t ox0 = 0; ox0 < ow;) {
        ptrdiff_t left = ow - ox0;
        if (mg == 1) {
            if (left >= 24 || left == 16) {
                BF_NAME(chunk_columns)(job, 0, 1, ox0, ox0 + 8, 2, stride);
                ox0 += 16;
            } else if (left > 16 || left <= 8) {
                BF_NAME(chunk_columns)(job, 0, 1, ox0, ox0, 1, stride);
                ox0 += 8;
            } else {
                BF_NAME(chunk_columns)(job, 0, 1, ox0, ow - 8, 2, stride);
                ox0 = ow;
            }
            continue;
        }
        ptrdiff_t at = left < 8 && ow >= 8 && !job->residual ? ow - 8 : ox0;
        ptrdiff_t m0 = 0;
        for (; m0 + 4 <= mg; m0 += 4) BF_NAME(chunk_columns)(job, m0, 4, at, at, 1, stride);
        for (; m0 + 2 <= mg; m0 += 2) BF_NAME(chunk_columns)(job, m0, 2, at, at, 1, stride);
        for (; m0 < mg; m0++) BF_NAME(chunk_columns)(job, m0, 1, at, at, 1, stride);
        ox0 += 8;
    }
}

/* `chunked_stride` for stride 1 or 2 across (compiled once for each); `scratch` holds the
   zero row (input_width floats). */
BF_FN void BF_NAME(chunked)(
    const bf_group_plan *p, const float *x, const float *w, const float *bias, const float *residual, float *y,
    const bottlefit_activation *act, float *scratch) {
    for (ptrdiff_t i = 0; i < p->g->input_width; i++) scratch[i] = 0.0f;
    BF_NAME(chunk_job) job = {p, x, scratch, w, bias, residual, y, act};
    if (BF_NAME(takes_dw)(&job)) BF_NAME(dw)(&job);
    else if (p->g->stride_width == 1) BF_NAME(chunked_stride)(&job, 1);
    else BF_NAME(chunked_stride)(&job, 2);
}
#endif

static BF_TARGET void BF_NAME(group_conv)(
    const bf_group_plan *p, const float *x, const float *w, const float *bias, const float *residual, float *y,
    const bottlefit_activation *act, float *padded) {
#if BF_AVX2 || BF_WIDE
    /* The AVX-512 build takes the 8-float kernels too: on Zen 4 (2 threads) they ran
       MobileNetV2's depthwise layers in 0.5-0.9x the time of the 16-float ones (features.2,
       112x112 stride 2: 0.36 -> 0.19 ms; every 14x14 and 7x7 layer about half, where the
       16-float path read the plane directly with masked loads, 9 per output vector), RegNetY's
       grouped ones in 0.45-0.9x and the 5x5 ones in 0.4-0.7x (docs/performance.md, "Zen 4"). */
    if (p->g->stride_width == 1 || p->g->stride_width == 2) {
        BF_NAME(chunked)(p, x, w, bias, residual, y, act, padded);
        return;
    }
#endif
    BF_NAME(pad_group)(p, x, padded);
    ptrdiff_t m0 = 0, mg = p->mg;
    if (mg == 1) {
        /* Depthwise: 8 sums in flight with AVX-512 (8 rows of one vector up to 32 columns,
           else 4 rows of vector pairs), 4 in the builds with fewer registers. */
        if (p->g->output_width <= 32)
            BF_NAME(single_rows)(p, padded, w, BF_WIDE ? 8 : 4, 1, bias, residual, y, act);
        else
            BF_NAME(single_rows)(p, padded, w, BF_WIDE ? 4 : 2, 2, bias, residual, y, act);
        return;
    }
    for (; m0 + 8 <= mg; m0 += 8) BF_NAME(group_rows)(p, padded, w, m0, 8, 1, bias, residual, y, act);
    for (; m0 + 4 <= mg; m0 += 4) BF_NAME(group_rows)(p, padded, w, m0, 4, 2, bias, residual, y, act);
    for (; m0 + 2 <= mg; m0 += 2) BF_NAME(group_rows)(p, padded, w, m0, 2, 2, bias, residual, y, act);
    for (; m0 < mg; m0++) BF_NAME(group_rows)(p, padded, w, m0, 1, 4, bias, residual, y, act);
}

#undef BF_FN
