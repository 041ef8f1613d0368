/*
 * libjpeg behind an error manager that longjmps back here instead of exiting.
 *
 * Each public function keeps its libjpeg state in a job struct and calls a *_guarded
 * function that does the setjmp and all libjpeg calls. After a longjmp only the job
 * (reached through a pointer, never a local of the function that called setjmp) is
 * read, so the C rule that non-volatile locals are indeterminate after longjmp does
 * not apply. The public function then destroys the libjpeg object whatever happened.
 */
#include "BottleFitJPEGCodec.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/* ---- Error manager ------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *message;            /* caller's buffer; the first message wins */
    size_t message_capacity;
    int has_message;
    bfjpeg_status status;     /* what to return after the longjmp */
    int tolerate_corrupt_data;
} bf_error_mgr;

static void bf_set_message(bf_error_mgr *err, const char *text) {
    if (err->has_message || err->message == NULL || err->message_capacity == 0) return;
    snprintf(err->message, err->message_capacity, "%s", text);
    err->has_message = 1;
}

static void bf_capture_libjpeg_message(j_common_ptr cinfo) {
    bf_error_mgr *err = (bf_error_mgr *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    bf_set_message(err, text);
}

static void bf_fail(j_common_ptr cinfo, bfjpeg_status status) {
    bf_error_mgr *err = (bf_error_mgr *)cinfo->err;
    err->status = status;
    longjmp(err->jump, 1);
}

/* Replaces the default, which prints the message and calls exit(). */
static void bf_error_exit(j_common_ptr cinfo) {
    bf_capture_libjpeg_message(cinfo);
    switch (cinfo->err->msg_code) {
    case JERR_OUT_OF_MEMORY: bf_fail(cinfo, BFJPEG_OUT_OF_MEMORY); break;
    case JERR_CONVERSION_NOTIMPL:
    case JERR_BAD_PRECISION:
    case JERR_NOT_COMPILED: bf_fail(cinfo, BFJPEG_UNSUPPORTED); break;
    default: bf_fail(cinfo, BFJPEG_CORRUPT); break;
    }
}

/* Replaces the default, which prints to stderr: the text goes to the caller instead. */
static void bf_output_message(j_common_ptr cinfo) { bf_capture_libjpeg_message(cinfo); }

/* Level -1 is a warning, and on decode every libjpeg warning means damaged data that it
   would patch over (a truncated file becomes a grey bottom half). Positive levels are
   trace messages, which are dropped. */
static void bf_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level >= 0) return;
    bf_error_mgr *err = (bf_error_mgr *)cinfo->err;
    cinfo->err->num_warnings++;
    int code = cinfo->err->msg_code;
    int truncated = code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER;
    if (truncated || !err->tolerate_corrupt_data) {
        bf_capture_libjpeg_message(cinfo);
        bf_fail(cinfo, BFJPEG_CORRUPT);
    }
}

static void bf_error_init(bf_error_mgr *err, char *message, size_t message_capacity, int flags) {
    jpeg_std_error(&err->pub);
    err->pub.error_exit = bf_error_exit;
    err->pub.output_message = bf_output_message;
    err->pub.emit_message = bf_emit_message;
    err->message = message;
    err->message_capacity = message_capacity;
    err->has_message = 0;
    err->status = BFJPEG_OK;
    err->tolerate_corrupt_data = (flags & BFJPEG_TOLERATE_CORRUPT_DATA) != 0;
    if (message != NULL && message_capacity > 0) message[0] = '\0';
}

/* Refuses files with an absurd number of progressive scans (see BFJPEG_MAX_SCANS). */
static void bf_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr dinfo = (j_decompress_ptr)cinfo;
    if (dinfo->input_scan_number > BFJPEG_MAX_SCANS) {
        char text[96];
        snprintf(text, sizeof text, "JPEG has more than %d scans", BFJPEG_MAX_SCANS);
        bf_set_message((bf_error_mgr *)cinfo->err, text);
        bf_fail(cinfo, BFJPEG_CORRUPT);
    }
}

/* ---- Decoding ------------------------------------------------------------------ */

typedef struct {
    struct jpeg_decompress_struct cinfo;
    bf_error_mgr err;
    struct jpeg_progress_mgr progress;
    const uint8_t *data;
    size_t size;
    uint64_t max_pixels;
    int components;             /* 0: only read the header */
    uint8_t *pixels;
    size_t pixels_capacity;
    bfjpeg_header *header;
} bf_decode_job;

static bfjpeg_status bf_decode_guarded(bf_decode_job *job) {
    if (setjmp(job->err.jump)) return job->err.status;

    j_decompress_ptr cinfo = &job->cinfo;
    jpeg_create_decompress(cinfo);
    job->progress.progress_monitor = bf_progress;
    cinfo->progress = &job->progress;
    /* An empty input is reported by libjpeg itself (JERR_INPUT_EMPTY). */
    jpeg_mem_src(cinfo, job->data, (unsigned long)job->size);
    if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) {
        bf_set_message(&job->err, "JPEG has no image");
        return BFJPEG_CORRUPT;
    }

    int components;
    if (cinfo->jpeg_color_space == JCS_GRAYSCALE && cinfo->num_components == 1) {
        components = 1;
    } else if (cinfo->num_components == 3
               && (cinfo->jpeg_color_space == JCS_YCbCr || cinfo->jpeg_color_space == JCS_RGB)) {
        components = 3;
    } else {
        char text[128];
        snprintf(text, sizeof text, "JPEG with %d components in colour space %d (CMYK/YCCK?) is not supported",
                 cinfo->num_components, (int)cinfo->jpeg_color_space);
        bf_set_message(&job->err, text);
        return BFJPEG_UNSUPPORTED;
    }
    job->header->width = (int)cinfo->image_width;
    job->header->height = (int)cinfo->image_height;
    job->header->components = components;
    /* Both are at most 65535, so the product cannot overflow 64 bits. */
    uint64_t pixel_count = (uint64_t)cinfo->image_width * (uint64_t)cinfo->image_height;
    if (pixel_count > job->max_pixels) {
        char text[128];
        snprintf(text, sizeof text, "JPEG is %ux%u, more than %llu pixels",
                 (unsigned)cinfo->image_width, (unsigned)cinfo->image_height,
                 (unsigned long long)job->max_pixels);
        bf_set_message(&job->err, text);
        return BFJPEG_TOO_LARGE;
    }
    if (job->components == 0) return BFJPEG_OK;

    cinfo->out_color_space = job->components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(cinfo);
    size_t row_bytes = (size_t)cinfo->output_width * (size_t)cinfo->output_components;
    if (cinfo->output_components != job->components
        || cinfo->output_width != cinfo->image_width || cinfo->output_height != cinfo->image_height
        || row_bytes * (size_t)cinfo->output_height > job->pixels_capacity) {
        bf_set_message(&job->err, "pixel buffer does not fit the decoded image");
        return BFJPEG_INVALID_ARGUMENT;
    }
    job->header->components = job->components;
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = job->pixels + (size_t)cinfo->output_scanline * row_bytes;
        /* A memory source never suspends, so 0 rows would mean a libjpeg bug: stop
           rather than loop forever. */
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            bf_set_message(&job->err, "libjpeg returned no scanline");
            return BFJPEG_CORRUPT;
        }
    }
    /* Reads through to the EOI marker, so a file missing only its last bytes still
       fails with "premature end". */
    jpeg_finish_decompress(cinfo);
    return BFJPEG_OK;
}

static bfjpeg_status bf_decode(const uint8_t *data, size_t size, uint64_t max_pixels, int components,
                               int flags, uint8_t *pixels, size_t pixels_capacity,
                               bfjpeg_header *header, char *message, size_t message_capacity) {
    if (message != NULL && message_capacity > 0) message[0] = '\0';
    int too_long = 0;
#if SIZE_MAX > ULONG_MAX
    too_long = size > ULONG_MAX; /* jpeg_mem_src takes an unsigned long */
#endif
    if ((data == NULL && size > 0) || header == NULL || too_long
        || (components != 0 && (pixels == NULL || (components != 1 && components != 3)))) {
        if (message != NULL && message_capacity > 0)
            snprintf(message, message_capacity, "invalid argument to the JPEG decoder");
        return BFJPEG_INVALID_ARGUMENT;
    }
    header->width = 0;
    header->height = 0;
    header->components = 0;

    bf_decode_job job;
    memset(&job, 0, sizeof job);
    bf_error_init(&job.err, message, message_capacity, flags);
    job.cinfo.err = &job.err.pub;
    /* libjpeg reads nothing when the size is 0, but wants a non-null pointer. */
    static const uint8_t empty = 0;
    job.data = size > 0 ? data : &empty;
    job.size = size;
    job.max_pixels = max_pixels;
    job.components = components;
    job.pixels = pixels;
    job.pixels_capacity = pixels_capacity;
    job.header = header;

    bfjpeg_status status = bf_decode_guarded(&job);
    /* Safe on every path: memset left cinfo.mem NULL if creation never happened. */
    jpeg_destroy_decompress(&job.cinfo);
    return status;
}

bfjpeg_status bfjpeg_read_header(const uint8_t *data, size_t size, uint64_t max_pixels,
                                 bfjpeg_header *header, char *message, size_t message_capacity) {
    return bf_decode(data, size, max_pixels, 0, 0, NULL, 0, header, message, message_capacity);
}

bfjpeg_status bfjpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                            int components, int flags, uint8_t *pixels, size_t pixels_capacity,
                            bfjpeg_header *header, char *message, size_t message_capacity) {
    if (components != 1 && components != 3) {
        if (message != NULL && message_capacity > 0)
            snprintf(message, message_capacity, "components must be 1 or 3, not %d", components);
        return BFJPEG_INVALID_ARGUMENT;
    }
    return bf_decode(data, size, max_pixels, components, flags, pixels, pixels_capacity, header,
                     message, message_capacity);
}

/* ---- Encoding ------------------------------------------------------------------ */

/* A growable memory destination. jpeg_mem_dest would do, except that it publishes its
   buffer only at the end: after an error midway its malloc'd buffer can be neither
   found nor freed. Here the buffer belongs to the job, so the error path frees it. */
typedef struct {
    struct jpeg_destination_mgr pub;
    uint8_t *buffer;
    size_t capacity;
} bf_destination;

static void bf_init_destination(j_compress_ptr cinfo) {
    bf_destination *dest = (bf_destination *)cinfo->dest;
    dest->pub.next_output_byte = dest->buffer;
    dest->pub.free_in_buffer = dest->capacity;
}

/* Called when the buffer is full (libjpeg's contract: the whole buffer, whatever
   free_in_buffer says). Doubles it. */
static boolean bf_empty_output_buffer(j_compress_ptr cinfo) {
    bf_destination *dest = (bf_destination *)cinfo->dest;
    size_t used = dest->capacity;
    if (dest->capacity > SIZE_MAX / 2) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 10);
    uint8_t *grown = realloc(dest->buffer, dest->capacity * 2);
    if (grown == NULL) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 10);
    dest->buffer = grown;
    dest->capacity *= 2;
    dest->pub.next_output_byte = grown + used;
    dest->pub.free_in_buffer = dest->capacity - used;
    return TRUE;
}

static void bf_term_destination(j_compress_ptr cinfo) { (void)cinfo; }

typedef struct {
    struct jpeg_compress_struct cinfo;
    bf_error_mgr err;
    bf_destination dest;
    const uint8_t *pixels;
    int width, height, components, quality, progressive;
} bf_encode_job;

static bfjpeg_status bf_encode_guarded(bf_encode_job *job) {
    if (setjmp(job->err.jump)) return job->err.status;

    j_compress_ptr cinfo = &job->cinfo;
    jpeg_create_compress(cinfo);
    /* About a quarter of the raw size covers quality 90 on most images; 4 KiB minimum. */
    size_t raw = (size_t)job->width * (size_t)job->height * (size_t)job->components;
    job->dest.capacity = raw / 4 > 4096 ? raw / 4 : 4096;
    job->dest.buffer = malloc(job->dest.capacity);
    if (job->dest.buffer == NULL) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 10);
    job->dest.pub.init_destination = bf_init_destination;
    job->dest.pub.empty_output_buffer = bf_empty_output_buffer;
    job->dest.pub.term_destination = bf_term_destination;
    cinfo->dest = &job->dest.pub;

    cinfo->image_width = (JDIMENSION)job->width;
    cinfo->image_height = (JDIMENSION)job->height;
    cinfo->input_components = job->components;
    cinfo->in_color_space = job->components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, job->quality, TRUE);
    if (job->progressive) jpeg_simple_progression(cinfo);
    jpeg_start_compress(cinfo, TRUE);
    size_t row_bytes = (size_t)job->width * (size_t)job->components;
    while (cinfo->next_scanline < cinfo->image_height) {
        /* libjpeg does not write through the row pointers it is given. */
        JSAMPROW row = (JSAMPROW)(job->pixels + (size_t)cinfo->next_scanline * row_bytes);
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
    return BFJPEG_OK;
}

bfjpeg_status bfjpeg_encode(const uint8_t *pixels, int width, int height, int components,
                            int quality, int progressive, uint8_t **jpeg, size_t *jpeg_size,
                            char *message, size_t message_capacity) {
    if (message != NULL && message_capacity > 0) message[0] = '\0';
    if (jpeg != NULL) *jpeg = NULL;
    if (jpeg_size != NULL) *jpeg_size = 0;
    const char *problem = NULL;
    if (pixels == NULL || jpeg == NULL || jpeg_size == NULL) problem = "null pointer";
    else if (width < 1 || height < 1 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION)
        problem = "width and height must be in 1...65500";
    else if (components != 1 && components != 3) problem = "components must be 1 or 3";
    else if (quality < 1 || quality > 100) problem = "quality must be in 1...100";
    if (problem != NULL) {
        if (message != NULL && message_capacity > 0) snprintf(message, message_capacity, "%s", problem);
        return BFJPEG_INVALID_ARGUMENT;
    }

    bf_encode_job job;
    memset(&job, 0, sizeof job);
    bf_error_init(&job.err, message, message_capacity, 0);
    job.cinfo.err = &job.err.pub;
    job.pixels = pixels;
    job.width = width;
    job.height = height;
    job.components = components;
    job.quality = quality;
    job.progressive = progressive;

    bfjpeg_status status = bf_encode_guarded(&job);
    if (status == BFJPEG_OK) {
        *jpeg = job.dest.buffer;
        *jpeg_size = job.dest.capacity - job.dest.pub.free_in_buffer;
    } else {
        free(job.dest.buffer);
    }
    jpeg_destroy_compress(&job.cinfo);
    return status;
}

void bfjpeg_free(uint8_t *jpeg) { free(jpeg); }
