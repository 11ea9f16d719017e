/* Compiled with -std=c99 -pedantic -Wall -Wextra -Werror and nothing but the
 * public header, then run: the header is strict C99 on its own, and the
 * library it links against has its version. */
#include <dcrw/dcrw.h>

int main(void) {
    dcrw_config cfg;
    dcrw_loss loss = {0.0, 0.0, 0.0};
    if (dcrw_config_preset(&cfg, DCRW_PRESET_DRAW) != DCRW_OK) return 1;
    if (cfg.size != sizeof cfg || loss.loss != 0.0) return 1;
    return dcrw_version() == (unsigned)DCRW_VERSION ? 0 : 1;
}
