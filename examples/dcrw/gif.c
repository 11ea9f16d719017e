/* Animated GIF output through giflib 5 (a 256-level grey palette). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#if DCRW_CLI_HAVE_GIF
#include <gif_lib.h>

int cli_gif_available(void) {
    return 1;
}

static int put_loop(GifFileType *g) {
    /* the NETSCAPE2.0 block: loop forever */
    static const unsigned char app[11] = {'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0'};
    static const unsigned char loop[3] = {1, 0, 0};
    if (EGifPutExtensionLeader(g, APPLICATION_EXT_FUNC_CODE) != GIF_OK) return -1;
    if (EGifPutExtensionBlock(g, sizeof app, app) != GIF_OK) return -1;
    if (EGifPutExtensionBlock(g, sizeof loop, loop) != GIF_OK) return -1;
    if (EGifPutExtensionTrailer(g) != GIF_OK) return -1;
    return 0;
}

static int put_frames(GifFileType *g, const unsigned char *const *frames, int n, int w, int h,
                      int delay, int last_delay) {
    EGifSetGifVersion(g, true);
    ColorMapObject *map = GifMakeMapObject(256, NULL);
    if (!map) return -1;
    for (int i = 0; i < 256; i++)
        map->Colors[i].Red = map->Colors[i].Green = map->Colors[i].Blue = (GifByteType)i;
    int rc = EGifPutScreenDesc(g, w, h, 8, 0, map) == GIF_OK ? 0 : -1;
    GifFreeMapObject(map);
    if (rc == 0) rc = put_loop(g);
    for (int k = 0; rc == 0 && k < n; k++) {
        GraphicsControlBlock gcb = {0};
        gcb.DisposalMode = DISPOSE_DO_NOT;
        gcb.DelayTime = k == n - 1 ? last_delay : delay;
        gcb.TransparentColor = NO_TRANSPARENT_COLOR;
        GifByteType ext[4];
        EGifGCBToExtension(&gcb, ext);
        if (EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, 4, ext) != GIF_OK ||
            EGifPutImageDesc(g, 0, 0, w, h, false, NULL) != GIF_OK) {
            rc = -1;
            break;
        }
        for (int y = 0; y < h; y++)
            if (EGifPutLine(g, (GifPixelType *)(frames[k] + (size_t)y * (size_t)w), w) != GIF_OK) {
                rc = -1;
                break;
            }
    }
    return rc;
}

int cli_gif_write(const char *path, const unsigned char *const *frames, int n, int w, int h,
                  int delay, int last_delay) {
    if (w > 65535 || h > 65535 || n < 1) {
        cli_error("%s: a GIF of %dx%d pixels is too large", path, w, h);
        return CLI_BAD;
    }
    char *tmp = NULL;
    int fd = cli_tmp_open(path, &tmp);
    if (fd < 0) return CLI_BAD;
    int err = 0;
    GifFileType *g = EGifOpenFileHandle(fd, &err);
    if (!g) {
        close(fd);
        unlink(tmp);
        free(tmp);
        cli_error("%s: giflib cannot open the output: %s", path, GifErrorString(err));
        return CLI_BAD;
    }
    int rc = put_frames(g, frames, n, w, h, delay, last_delay);
    int gerr = g->Error;
    /* closes the descriptor too */
    if (EGifCloseFile(g, &err) != GIF_OK) {
        rc = -1;
        gerr = err;
    }
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        cli_error("%s: writing the GIF failed: %s", path,
                  GifErrorString(gerr) ? GifErrorString(gerr) : "unknown error");
        return CLI_BAD;
    }
    rc = cli_tmp_commit(tmp, path);
    free(tmp);
    return rc == 0 ? CLI_OK : CLI_BAD;
}

#else

int cli_gif_available(void) {
    return 0;
}

int cli_gif_write(const char *path, const unsigned char *const *frames, int n, int w, int h,
                  int delay, int last_delay) {
    (void)frames, (void)n, (void)w, (void)h, (void)delay, (void)last_delay;
    cli_error("%s: this dcrw was built without giflib, so it cannot write GIFs "
              "(install libgif-dev and rebuild)",
              path);
    return CLI_BAD;
}

#endif
