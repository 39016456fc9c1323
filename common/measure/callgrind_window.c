/* Opens and closes callgrind's collection around a suite's training (common/measure/counting.py).
   Valgrind's client requests are a few no-op instructions outside valgrind. */
#include <valgrind/callgrind.h>

void window_open(void) {
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
}

void window_close(void) {
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT("training");
    CALLGRIND_STOP_INSTRUMENTATION;
}
