/*
 * Startup code for every Cortex-M target of the firmware (ARMv6-M, ARMv7-M, ARMv8-M mainline, ARMv8.1-M):
 * the vector table, Reset_Handler, a default handler for unexpected exceptions, and the two hooks newlib
 * needs beyond librdimon (_sbrk on the linker script's heap, empty _init/_fini).
 *
 * Reset sequence: point VTOR at the table (not on ARMv6-M), set the main stack limit (ARMv8-M mainline),
 * enable the FPU/MVE coprocessors CP10/CP11 (cores built with an FPU), copy .data from its load address in
 * FLASH, zero .bss, open the semihosting stdio handles, run the constructor tables, then exit(main()).
 *
 * The image runs in the state the core resets into: Thread mode, privileged, main stack; on the ARMv8-M
 * boards (mps2-an505, mps3-an547) that is the Secure state, which needs no further set-up as long as the
 * image only uses the Secure aliases of the memories (see ld/).
 *
 * Output and exit go through Arm semihosting (BKPT 0xAB; newlib's librdimon, --specs=rdimon.specs): on a
 * real board that needs a debugger attached, otherwise retarget _write/_exit (see README.md).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Linker script symbols (ld/sections.ld). */
extern uint32_t __data_load__[], __data_start__[], __data_end__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern uint32_t __StackTop[], __StackLimit[];
extern char __HeapBase[], __HeapLimit[];

int main(void);
void initialise_monitor_handles(void); /* librdimon: opens the semihosting stdin/stdout/stderr */
void __libc_init_array(void);          /* newlib: runs .preinit_array, _init, .init_array */

void Reset_Handler(void);
void Default_Handler(void);
void fw_fatal(const uint32_t *frame, uint32_t exception);
void *_sbrk(ptrdiff_t incr);
void _init(void);
void _fini(void);

#define FW_WEAK_DEFAULT __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) FW_WEAK_DEFAULT;
void HardFault_Handler(void) FW_WEAK_DEFAULT;
void MemManage_Handler(void) FW_WEAK_DEFAULT;
void BusFault_Handler(void) FW_WEAK_DEFAULT;
void UsageFault_Handler(void) FW_WEAK_DEFAULT;
void SecureFault_Handler(void) FW_WEAK_DEFAULT;
void SVC_Handler(void) FW_WEAK_DEFAULT;
void DebugMon_Handler(void) FW_WEAK_DEFAULT;
void PendSV_Handler(void) FW_WEAK_DEFAULT;
void SysTick_Handler(void) FW_WEAK_DEFAULT; /* port/delrec_port.c defines the real one */

/* System control registers (the same addresses on every M profile core). */
#define FW_SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define FW_SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define FW_SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define FW_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define FW_CCR_STKOFHFNMIGN (1u << 10)

/* External interrupt vectors: none is enabled; 32 entries keep a stray one inside the table. */
#define FW_N_IRQ 32

typedef void (*fw_handler)(void);
typedef struct {
    uint32_t *initial_sp;
    fw_handler handlers[15 + FW_N_IRQ];
} fw_vector_table;

#define FW_IRQ4 Default_Handler, Default_Handler, Default_Handler, Default_Handler
#define FW_IRQ16 FW_IRQ4, FW_IRQ4, FW_IRQ4, FW_IRQ4

__attribute__((section(".vectors"), used)) const fw_vector_table fw_vectors = {
    __StackTop,
    {
        Reset_Handler,       /*  1 */
        NMI_Handler,         /*  2 */
        HardFault_Handler,   /*  3 */
        MemManage_Handler,   /*  4 (ARMv7-M and later) */
        BusFault_Handler,    /*  5 (ARMv7-M and later) */
        UsageFault_Handler,  /*  6 (ARMv7-M and later) */
        SecureFault_Handler, /*  7 (ARMv8-M with the Security Extension) */
        0, 0, 0,             /*  8..10 reserved */
        SVC_Handler,         /* 11 */
        DebugMon_Handler,    /* 12 */
        0,                   /* 13 reserved */
        PendSV_Handler,      /* 14 */
        SysTick_Handler,     /* 15 */
        FW_IRQ16, FW_IRQ16,  /* 16.. external interrupts */
    },
};

/* Everything that must happen before any floating-point or vector instruction runs. */
static void fw_core_init(void)
{
#if !defined(__ARM_ARCH_6M__)
    FW_SCB_VTOR = (uint32_t)(uintptr_t)&fw_vectors;
#endif
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* Main stack limit with 256 bytes to spare below it, so that an overflow raises a precise fault
       (UsageFault STKOF, escalated to HardFault) whose handler can still run in the spare bytes. */
    {
        uint32_t limit = (uint32_t)(uintptr_t)__StackLimit + 256u;
        FW_SCB_CCR |= FW_CCR_STKOFHFNMIGN;
        __asm__ volatile("msr msplim, %0" : : "r"(limit) : "memory");
    }
#endif
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* Full access to CP10 and CP11: the FPU, and the MVE registers on ARMv8.1-M. */
    FW_SCB_CPACR |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" : : : "memory");
#endif
}

static __attribute__((noinline)) void fw_memory_init(void)
{
    const uint32_t *src = __data_load__;
    uint32_t *dst;
    for (dst = __data_start__; dst < __data_end__; dst++) *dst = *src++;
    for (dst = __bss_start__; dst < __bss_end__; dst++) *dst = 0u;
}

void Reset_Handler(void)
{
    fw_core_init();
    fw_memory_init();
    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Unexpected exceptions: report through semihosting and exit with status 2 (the app uses 1 for its errors). */

static uint32_t fw_semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

#define FW_SYS_WRITE0 0x04u
#define FW_SYS_EXIT 0x18u
#define FW_SYS_EXIT_EXTENDED 0x20u
#define FW_ADP_STOPPED_APPLICATION_EXIT 0x20026u

static char *fw_put_str(char *p, const char *s)
{
    while (*s != '\0') *p++ = *s++;
    return p;
}

static char *fw_put_hex(char *p, uint32_t v)
{
    int shift;
    *p++ = '0';
    *p++ = 'x';
    for (shift = 28; shift >= 0; shift -= 4) *p++ = "0123456789abcdef"[(v >> shift) & 0xFu];
    return p;
}

void fw_fatal(const uint32_t *frame, uint32_t exception)
{
    static const char *const names[16] = {"thread", "reset", "NMI", "HardFault", "MemManage", "BusFault",
                                          "UsageFault", "SecureFault", "8", "9", "10", "SVCall", "DebugMonitor",
                                          "13", "PendSV", "SysTick"};
    static const uint32_t block[2] = {FW_ADP_STOPPED_APPLICATION_EXIT, 2u};
    static char line[112];
    uintptr_t at = (uintptr_t)frame;
    char *p = fw_put_str(line, "firmware: unexpected exception ");
    p = exception < 16u ? fw_put_str(p, names[exception]) : fw_put_hex(p, exception);
    if (at >= (uintptr_t)__StackLimit && at + 32u <= (uintptr_t)__StackTop) {
        p = fw_put_str(p, " at pc ");
        p = fw_put_hex(p, frame[6]);
    } else {
        p = fw_put_str(p, " with sp ");
        p = fw_put_hex(p, (uint32_t)at);
        p = fw_put_str(p, " outside the stack (stack overflow? raise STACK_SIZE)");
    }
#if !defined(__ARM_ARCH_6M__)
    p = fw_put_str(p, " cfsr ");
    p = fw_put_hex(p, FW_SCB_CFSR); /* UsageFault bit 20 (STKOF, ARMv8-M): stack overflow (MSPLIM) */
#endif
    p = fw_put_str(p, "\n");
    *p = '\0';
    (void)fw_semihost(FW_SYS_WRITE0, line);
    (void)fw_semihost(FW_SYS_EXIT_EXTENDED, block);
    (void)fw_semihost(FW_SYS_EXIT, (const void *)(uintptr_t)0x20023u); /* ADP_Stopped_RunTimeErrorUnknown */
    for (;;) {
    }
}

/* Passes the exception frame (on the main stack: this image never uses the process stack) and IPSR to
   fw_fatal, which runs on a fresh stack (it never returns): the old one may have overflowed. */
__attribute__((naked)) void Default_Handler(void)
{
    __asm__ volatile(
        "mrs r0, msp\n\t"
        "mrs r1, ipsr\n\t"
        "ldr r2, =__StackTop\n\t"
        "mov sp, r2\n\t"
        "ldr r2, =fw_fatal\n\t"
        "bx r2\n\t"
        ".ltorg");
}

/* ---------------------------------------------------------------------------------------------------------- */
/* newlib hooks. */

/* malloc's memory: the .heap section (HEAP_SIZE bytes), never the stack. */
void *_sbrk(ptrdiff_t incr)
{
    static char *heap_end;
    char *prev;
    if (heap_end == NULL) heap_end = __HeapBase;
    if (incr > __HeapLimit - heap_end || incr < __HeapBase - heap_end) {
        errno = ENOMEM;
        return (void *)-1;
    }
    prev = heap_end;
    heap_end += incr;
    return prev;
}

/* No crti.o/crtn.o in a -nostartfiles link: __libc_init_array and exit still call these. */
void _init(void)
{
}

void _fini(void)
{
}
