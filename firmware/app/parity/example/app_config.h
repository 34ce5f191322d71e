/*
 * Example app_config.h for the parity app, written by hand: what the generated one (delrec-edge firmware,
 * codegen/templates/app_config.h.j2) provides, for a model generated with the default prefix "model".
 * A smoke test for any such model folder:
 *
 *   make -C firmware TARGET=cortex-m4 MODEL_DIR=/abs/model_c APP_DIR=$PWD/firmware/app/parity/example \
 *        BUILD_DIR=/tmp/example run
 *
 * The generated configuration embeds real test samples and hashes the complete state in a canonical field
 * order that the host recomputes from the integer reference model; this one uses two short synthetic
 * samples and hashes only the fields every model has (u and score).
 */
#ifndef APP_CONFIG_H
#define APP_CONFIG_H

#include <stdint.h>
#include "model.h"

#define APP_STATE model_state
#define APP_RESET model_reset
#define APP_STEP model_step
#define APP_CLASSIFY model_classify
#define APP_PREDICT model_predict
#define APP_N_INPUTS MODEL_N_INPUTS
#define APP_N_CLASSES MODEL_N_CLASSES
#define APP_N_STEPS 8
#define APP_N_SAMPLES 2
#define APP_MODEL_SHA256 MODEL_MODEL_SHA256
#define APP_HASH_INIT 0xcbf29ce484222325ull

/* APP_N_SAMPLES x (APP_N_STEPS * APP_N_INPUTS) spike counts 0..255, time-major; missing values are 0. */
static const uint8_t app_inputs[APP_N_SAMPLES][APP_N_STEPS * APP_N_INPUTS] = {
    {3, 0, 1, 0, 2, 0, 0, 1, 4, 0, 0, 2, 1, 1, 0, 0},
    {0, 0, 0, 5, 0, 0, 1, 0, 0, 2, 3, 0, 0, 0, 1, 7},
};

/* FNV-1a over 32-bit words. */
static uint64_t app_fold(uint64_t h, uint32_t w)
{
    return (h ^ w) * 0x100000001b3ull;
}

/* Fold the state after one step into the hash. */
static uint64_t app_hash_state(uint64_t h, const APP_STATE *s)
{
    uint32_t i;
    for (i = 0u; i < (uint32_t)APP_N_CLASSES; i++) h = app_fold(h, (uint32_t)s->u[i]);
    for (i = 0u; i < (uint32_t)APP_N_CLASSES; i++) {
        h = app_fold(h, (uint32_t)((uint64_t)s->score[i] & 0xffffffffu));
        h = app_fold(h, (uint32_t)((uint64_t)s->score[i] >> 32));
    }
    return h;
}

#endif /* APP_CONFIG_H */
