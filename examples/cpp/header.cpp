// Compiled with -std=c++17 -Wall -Wextra -Werror -pedantic and nothing but
// the public header, then run: the declarations link with C linkage and the
// header's version is the library's.
#include <dcrw/dcrw.h>

int main() {
    dcrw_config cfg;
    if (dcrw_config_preset(&cfg, DCRW_PRESET_DCRW) != DCRW_OK || cfg.size != sizeof cfg) return 1;
    dcrw_model *m = nullptr;
    if (dcrw_model_create(&m, nullptr, 0) != DCRW_EINVAL || m != nullptr) return 1;
    return dcrw_version() == static_cast<unsigned>(DCRW_VERSION) ? 0 : 1;
}
