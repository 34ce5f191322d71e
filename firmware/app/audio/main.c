/*
 * Audio app: the generated model hears embedded int16 PCM clips through its integer front end, fed in blocks
 * of APP_HOP samples (10 ms) as a microphone's DMA would deliver them, and prints every value the host compares
 * with the integer reference, plus SysTick counts (see port/delrec_port.h).
 *
 * Model-agnostic: app_config.h (generated into APP_DIR) includes the model header and maps the prefixed API
 * onto APP_STATE, APP_RESET, APP_LISTEN, APP_HEAR, APP_PREDICT, APP_N_INPUTS, APP_N_CLASSES, APP_HOP, and
 * provides APP_N_CLIPS, APP_MODEL_SHA256, APP_HASH_INIT, app_pcm[], app_offsets[], app_hash_counts() and
 * app_hash_state().
 *
 * For every clip i:
 *   1. reset a static state and feed the clip block by block with APP_LISTEN (front end, then one network step
 *      per completed bin), timing each call alone; after each block (untimed) fold the last bin's counts and
 *      the complete state (network and front end) into two hashes, each from APP_HASH_INIT;
 *   2. reset a second state and feed the same blocks to APP_HEAR (the front end alone), timed the same way.
 * Output (stdout, semihosting):
 *   delrec-audio 1 clips=<N> hop=<H> channels=<C> classes=<K> insns_per_tick=<NUM>/<DEN> model=<sha256>
 *   block <i> <b> steps <n> counts <016x> state <016x>      one line per block b of clip i
 *   clip <i> class <c> blocks <B> steps <S> listen_ticks_sum <u64> listen_ticks_max <u64> hear_ticks_sum <u64> hear_ticks_max <u64>
 *   scores <i> <s_0> ... <s_K-1>
 *   ... (per clip: its block lines, then the clip and scores lines)
 *   done
 * Exit status 0; on the first call that returns an error: a line "error ..." and status 1.
 */
#include <stdint.h>
#include <stdio.h>

#include "app_config.h"
#include "delrec_port.h"

#define app_printf port_printf /* delrec_port.h */

static APP_STATE app_state_listen;
static APP_STATE app_state_hear;
static uint8_t app_counts[APP_N_INPUTS];
static char app_stdout_buffer[128]; /* static line buffer: stdio needs no heap */

static int app_error(const char *call, unsigned clip, unsigned block, int rc)
{
    app_printf("error %s returned %d (clip %u block %u)\n", call, rc, clip, block);
    return 1;
}

int main(void)
{
    unsigned i, b, k;
    (void)setvbuf(stdout, app_stdout_buffer, _IOLBF, sizeof app_stdout_buffer);
    port_timer_init();
    app_printf("delrec-audio 1 clips=%u hop=%u channels=%u classes=%u insns_per_tick=%lu/%lu model=%s\n",
               (unsigned)APP_N_CLIPS, (unsigned)APP_HOP, (unsigned)APP_N_INPUTS, (unsigned)APP_N_CLASSES,
               (unsigned long)PORT_INSNS_PER_TICK_NUM, (unsigned long)PORT_INSNS_PER_TICK_DEN, APP_MODEL_SHA256);

    for (i = 0u; i < (unsigned)APP_N_CLIPS; i++) {
        const int16_t *pcm = app_pcm + app_offsets[i];
        const uint32_t length = app_offsets[i + 1u] - app_offsets[i];
        uint64_t listen_sum = 0u, listen_max = 0u, hear_sum = 0u, hear_max = 0u, t0, t1;
        uint32_t at, block;
        unsigned steps = 0u;
        int rc, predicted;

        rc = APP_RESET(&app_state_listen);
        if (rc < 0) return app_error("reset", i, 0u, rc);
        for (at = 0u, b = 0u; at < length; at += block, b++) {
            block = length - at < APP_HOP ? length - at : APP_HOP;
            t0 = port_ticks();
            rc = APP_LISTEN(&app_state_listen, pcm + at, block, NULL, NULL);
            t1 = port_ticks();
            if (rc < 0) return app_error("listen", i, b, rc);
            steps += (unsigned)rc;
            listen_sum += t1 - t0;
            if (t1 - t0 > listen_max) listen_max = t1 - t0;
            app_printf("block %u %u steps %d counts %016llx state %016llx\n", i, b, rc,
                       (unsigned long long)app_hash_counts(APP_HASH_INIT, &app_state_listen),
                       (unsigned long long)app_hash_state(APP_HASH_INIT, &app_state_listen));
        }
        predicted = APP_PREDICT(&app_state_listen);
        if (predicted < 0) return app_error("predict", i, b, predicted);

        rc = APP_RESET(&app_state_hear);
        if (rc < 0) return app_error("reset", i, 0u, rc);
        for (at = 0u, b = 0u; at < length; at += block, b++) {
            block = length - at < APP_HOP ? length - at : APP_HOP;
            t0 = port_ticks();
            rc = APP_HEAR(&app_state_hear, pcm + at, block, app_counts, 1u);
            t1 = port_ticks();
            if (rc < 0) return app_error("hear", i, b, rc);
            hear_sum += t1 - t0;
            if (t1 - t0 > hear_max) hear_max = t1 - t0;
        }

        app_printf("clip %u class %d blocks %u steps %u listen_ticks_sum %llu listen_ticks_max %llu "
                   "hear_ticks_sum %llu hear_ticks_max %llu\n", i, predicted, b, steps,
                   (unsigned long long)listen_sum, (unsigned long long)listen_max, (unsigned long long)hear_sum,
                   (unsigned long long)hear_max);
        app_printf("scores %u", i);
        for (k = 0u; k < (unsigned)APP_N_CLASSES; k++) app_printf(" %lld", (long long)app_state_listen.score[k]);
        app_printf("\n");
    }
    app_printf("done\n");
    return 0;
}
