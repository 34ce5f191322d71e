/* SysTick timing port: see delrec_port.h. */
#include "delrec_port.h"

#define PORT_SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define PORT_SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define PORT_SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define PORT_SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)

#define PORT_CSR_ENABLE (1u << 0)
#define PORT_CSR_TICKINT (1u << 1)
#define PORT_CSR_CLKSOURCE (1u << 2) /* processor clock */
#define PORT_ICSR_PENDSTSET (1u << 26)
#define PORT_ICSR_PENDSTCLR (1u << 25)
#define PORT_RELOAD 0xFFFFFFu
#define PORT_PERIOD_BITS 24u /* one wrap = RELOAD + 1 = 2^24 ticks */

static volatile uint32_t port_wraps;

void SysTick_Handler(void);

void SysTick_Handler(void)
{
    port_wraps = port_wraps + 1u;
}

void port_timer_init(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask" : "=r"(primask));
    __asm__ volatile("cpsid i" : : : "memory");
    PORT_SYST_CSR = 0u;
    PORT_SYST_RVR = PORT_RELOAD;
    PORT_SYST_CVR = 0u; /* any write clears the counter and COUNTFLAG */
    PORT_SYST_CSR = PORT_CSR_CLKSOURCE | PORT_CSR_TICKINT | PORT_CSR_ENABLE;
    /* The counter holds 0 until its first tick loads RVR; start counting from that reload. */
    while (PORT_SYST_CVR == 0u) {
    }
    port_wraps = 0u;
    PORT_SCB_ICSR = PORT_ICSR_PENDSTCLR;
    __asm__ volatile("msr primask, %0" : : "r"(primask) : "memory");
}

uint64_t port_ticks(void)
{
    uint32_t primask, wraps, count;
    __asm__ volatile("mrs %0, primask" : "=r"(primask));
    __asm__ volatile("cpsid i" : : : "memory");
    wraps = port_wraps;
    count = PORT_SYST_CVR;
    if ((PORT_SCB_ICSR & PORT_ICSR_PENDSTSET) != 0u) {
        /* The counter wrapped and the interrupt has not counted it yet; re-read in case the wrap came
           after the first read. */
        count = PORT_SYST_CVR;
        wraps++;
    }
    __asm__ volatile("msr primask, %0" : : "r"(primask) : "memory");
    /* A wrap is counted when the counter reaches 0 (1 -> 0, where the interrupt pends); it reloads
       RELOAD one tick later. So count 0 is the last tick of the period that ends with this wrap. */
    if (count == 0u) return ((uint64_t)wraps << PORT_PERIOD_BITS) - 1u;
    return ((uint64_t)wraps << PORT_PERIOD_BITS) + (uint64_t)(PORT_RELOAD - count);
}
