#ifndef BOTTLEFIT_JPEG_CODEC_H
#define BOTTLEFIT_JPEG_CODEC_H
/*
 * libjpeg, made safe to call from Swift.
 *
 * libjpeg reports errors through an error manager whose default calls exit(), and the
 * only way back from its error_exit is longjmp, which Swift cannot use. These
 * functions install their own error manager, do the setjmp here in C, and turn every
 * failure into a status code plus a message in a caller-provided buffer. Warnings
 * about corrupt data (which libjpeg would otherwise paper over with grey pixels) are
 * errors too, so a truncated file never decodes "successfully".
 *
 * Every function is reentrant: all state lives in the call, none in globals.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a call returns. */
typedef enum {
    BFJPEG_OK = 0,
    /* libjpeg rejected the data, or it ended early, or a corrupt-data warning fired. */
    BFJPEG_CORRUPT = 1,
    /* width * height is over the caller's limit; the header's dimensions are filled in. */
    BFJPEG_TOO_LARGE = 2,
    /* A valid JPEG this codec does not decode (CMYK/YCCK, more than 8 bits a sample). */
    BFJPEG_UNSUPPORTED = 3,
    /* Null pointers, bad sizes, a pixel buffer too small, quality outside 1...100. */
    BFJPEG_INVALID_ARGUMENT = 4,
    BFJPEG_OUT_OF_MEMORY = 5,
} bfjpeg_status;

/* Decoding flags. */
enum {
    /* Only truncation ("premature end of data") fails; other corrupt-data warnings such
       as a bad Huffman code are tolerated and the damaged image is returned. */
    BFJPEG_TOLERATE_CORRUPT_DATA = 1,
};

/* Size of the message buffer callers should pass (libjpeg's own limit is 200). */
#define BFJPEG_MESSAGE_CAPACITY 256

/* Progressive files with more scans than this are refused: a few hundred tiny scans
   can make decoding take seconds (libjpeg-turbo's fuzzers use the same limit). */
#define BFJPEG_MAX_SCANS 500

/* The shape of a JPEG image as it decodes by default. */
typedef struct {
    int width;
    int height;
    /* 1 for greyscale, 3 for colour (YCbCr or RGB in the file, RGB once decoded). */
    int components;
} bfjpeg_header;

/* Reads the header of the JPEG in `data` without decoding pixels, so the caller can
   allocate once and refuse absurd sizes first. Returns BFJPEG_TOO_LARGE (with `header`
   filled in) when width * height > max_pixels. */
bfjpeg_status bfjpeg_read_header(const uint8_t *data, size_t size, uint64_t max_pixels,
                                 bfjpeg_header *header, char *message, size_t message_capacity);

/* Decodes the JPEG in `data` into `pixels` as 8-bit, row-major, interleaved samples with
   `components` channels (1: greyscale, 3: RGB; libjpeg converts between them).
   `pixels_capacity` must hold width * height * components bytes; `header` receives the
   decoded shape (its components are the requested ones). `flags` is 0 or
   BFJPEG_TOLERATE_CORRUPT_DATA. */
bfjpeg_status bfjpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                            int components, int flags, uint8_t *pixels, size_t pixels_capacity,
                            bfjpeg_header *header, char *message, size_t message_capacity);

/* Encodes width x height 8-bit pixels with 1 (greyscale) or 3 (RGB) interleaved
   components at `quality` (1...100; 4:2:0 chroma subsampling for colour, libjpeg's
   default). On BFJPEG_OK, *jpeg points to *jpeg_size bytes that the caller releases
   with bfjpeg_free; on failure *jpeg is NULL and nothing needs freeing. */
bfjpeg_status bfjpeg_encode(const uint8_t *pixels, int width, int height, int components,
                            int quality, int progressive, uint8_t **jpeg, size_t *jpeg_size,
                            char *message, size_t message_capacity);

/* Releases a buffer returned by bfjpeg_encode. */
void bfjpeg_free(uint8_t *jpeg);

#ifdef __cplusplus
}
#endif
#endif
