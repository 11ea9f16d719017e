/* PNG output through libpng (8-bit grey or RGB, no interlacing). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#if DCRW_CLI_HAVE_PNG
#include <png.h>

int cli_png_available(void) {
    return 1;
}

/* libpng reports errors by longjmp; everything the jump skips over is
 * released by the caller, which owns it. */
static int write_png(FILE *f, const cli_image *im) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!png) return -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)im->width, (png_uint_32)im->height, 8,
                 im->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)im->width * (size_t)im->channels;
    for (int y = 0; y < im->height; y++) png_write_row(png, im->px + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int cli_png_write(const char *path, const cli_image *im) {
    if (im->channels != 1 && im->channels != 3) {
        cli_error("%s: a PNG needs 1 or 3 channels", path);
        return CLI_FAIL;
    }
    char *tmp = NULL;
    int fd = cli_tmp_open(path, &tmp);
    if (fd < 0) return CLI_BAD;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        cli_error("%s: cannot open the output", path);
        return CLI_BAD;
    }
    int rc = write_png(f, im);
    if (fflush(f) != 0 || ferror(f)) rc = -1;
    if (fclose(f) != 0) rc = -1;
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        cli_error("%s: writing the PNG failed", path);
        return CLI_BAD;
    }
    rc = cli_tmp_commit(tmp, path);
    free(tmp);
    return rc == 0 ? CLI_OK : CLI_BAD;
}

#else

int cli_png_available(void) {
    return 0;
}

int cli_png_write(const char *path, const cli_image *im) {
    (void)im;
    cli_error("%s: this dcrw was built without libpng, so it cannot write PNG pictures "
              "(install libpng-dev and rebuild)",
              path);
    return CLI_BAD;
}

#endif
