/* Stop requests for the long commands: a signal only sets a flag, and the
 * command looks at it between steps and between evaluation batches, where
 * stopping loses nothing. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

static volatile sig_atomic_t n_signals = 0, first_signal = 0;
static int output_failed = 0;

static void on_stop_signal(int sig) {
    if (!first_signal) first_signal = sig;
    if (n_signals < 2) {
        n_signals++;
        return;
    }
    /* a third: the user means it. The default action ends the process as
     * soon as this handler returns (the signal is blocked until then); the
     * files on disk are whole, since every write is an atomic rename. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    raise(sig);
}

void cli_stop_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* a closed terminal (SIGHUP) is a request to stop like any other */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* `dcrw train | head`: the write fails with EPIPE instead of killing
     * the process before it could save */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

int cli_stop_requests(void) {
    return (int)n_signals + output_failed;
}

int cli_stop_signal(void) {
    return (int)first_signal;
}

int cli_flush_stdout(void) {
    if (output_failed) return -1;
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    output_failed = 1;
    return -1;
}

int cli_stdout_failed(void) {
    return output_failed;
}
