/* steppers.c: the HAL's actuator functions (hal_advance_command_nm,
 * hal_rotate_command_ucdeg). Once per tick the core gives each axis a new position; the
 * microsteps between the last one and it are spread evenly over the first STEP_TRAIN_US
 * of the next millisecond by that axis's TIMER alarm: each interrupt emits one STEP
 * pulse (or first sets DIR) and sets the alarm for the next. At most 32 advance
 * microsteps per tick (20 mm/s: 64 kHz within the train), 7 rotation ones (120 rpm):
 * ≤ 39 short interrupts per millisecond. The train ends well before the next tick, whose
 * first half (main.c) reads the sensors: the carriage has done what was commanded. */
#include "steppers.h"

#include <stdbool.h>

#include "board.h"
#include "hal.h"
#include "rp2040_regs.h"

/* TMC2209: STEP high ≥ 100 ns; DIR set ≥ 20 ns before the STEP edge (datasheet 13.1).
 * A few instructions at 125 MHz. */
#define STEP_HIGH_NOPS 16
#define STEP_TRAIN_US 500u

struct train {
    uint32_t alarm;        /* TIMER alarm (and IRQ) number */
    uint32_t step_pin, dir_pin;
    volatile int64_t pos;    /* microsteps emitted (interrupt) */
    volatile int64_t target; /* microsteps commanded (main loop, under irq_save) */
    volatile uint32_t period_us;
    volatile bool armed;
    bool dir_up; /* DIR as last set */
};

static struct train adv = {.alarm = 1u, .step_pin = PIN_ADV_STEP, .dir_pin = PIN_ADV_DIR};
static struct train rot = {.alarm = 2u, .step_pin = PIN_ROT_STEP, .dir_pin = PIN_ROT_DIR};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static void arm(struct train *t, uint32_t after_us)
{
    REG(TIMER_ALARM(t->alarm)) = REG(TIMER_RAWL) + after_us;
    t->armed = true;
}

static void train_init(struct train *t)
{
    board_gpio_output(t->step_pin, false);
    board_gpio_output(t->dir_pin, true);
    t->dir_up = true;
    REG_SET(TIMER_INTE) = 1u << t->alarm;
    /* priority 0 (reset value), with the encoder: a step is never held up */
    NVIC_ISER = 1u << t->alarm;
}

void steppers_init(void)
{
    train_init(&adv);
    train_init(&rot);
    board_gpio_output(PIN_DRV_EN, false); /* drivers on (EN active low) */
}

static void command(struct train *t, int64_t target)
{
    const uint32_t saved = board_irq_save();
    int64_t n = target - t->pos;
    if (n < 0) n = -n;
    t->target = target;
    /* the steps due, evenly over the train; a DIR change costs one slot */
    t->period_us = n > 0 ? (uint32_t)(STEP_TRAIN_US / (uint64_t)(n + 1)) : 0u;
    if (t->period_us == 0u) t->period_us = 1u;
    if (n > 0 && !t->armed) arm(t, 1u);
    board_irq_restore(saved);
}

static void on_alarm(struct train *t)
{
    REG(TIMER_INTR) = 1u << t->alarm;
    if (t->pos == t->target) {
        t->armed = false;
        return;
    }
    const bool up = t->target > t->pos;
    if (up != t->dir_up) {
        if (up) SIO_GPIO_OUT_SET = 1u << t->dir_pin;
        else SIO_GPIO_OUT_CLR = 1u << t->dir_pin;
        t->dir_up = up;
        arm(t, 1u); /* DIR setup time before the step */
        return;
    }
    SIO_GPIO_OUT_SET = 1u << t->step_pin;
    for (int i = 0; i < STEP_HIGH_NOPS; ++i) __asm volatile("nop");
    SIO_GPIO_OUT_CLR = 1u << t->step_pin;
    t->pos += up ? 1 : -1;
    if (t->pos != t->target) arm(t, t->period_us);
    else t->armed = false;
}

void isr_timer1(void) { on_alarm(&adv); }
void isr_timer2(void) { on_alarm(&rot); }

void hal_advance_command_nm(int64_t motor_nm)
{
    command(&adv, floor_div(motor_nm, ADV_NM_PER_MICROSTEP));
}

void hal_rotate_command_ucdeg(int64_t angle_ucdeg)
{
    command(&rot, floor_div(angle_ucdeg, ROT_UCDEG_PER_MICROSTEP));
}

int64_t steppers_advance_position(void)
{
    const uint32_t saved = board_irq_save();
    const int64_t p = adv.pos;
    board_irq_restore(saved);
    return p;
}
