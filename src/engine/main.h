/* The engine process's entry: vmhostd runs it as `vmhostd --engine ...`
 * (the monitor starts it; engine/main.c says what it gets). */
#ifndef VMHOSTD_ENGINE_MAIN_H
#define VMHOSTD_ENGINE_MAIN_H

int engine_main(int argc, char **argv);

#endif
