#ifndef BOTTLEFIT_CPU_HINTS_SHIM_H
#define BOTTLEFIT_CPU_HINTS_SHIM_H

/* CPU hints Swift cannot express, as static inline functions. */

/* Tell the core this thread is spinning (x86 PAUSE): the engine's threads spin between
   kernels, and without it a spinning thread takes issue slots from a sibling hardware
   thread that is doing the work. Elsewhere a no-op. */
static inline void bottlefit_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif
