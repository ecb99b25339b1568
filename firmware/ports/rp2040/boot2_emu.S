/* boot2_emu.S: the emulator's second-stage boot (the first 256 bytes of flash).
 * On silicon the bootrom copies these 256 bytes to SRAM, checks their CRC and runs them
 * to set up the flash for execute-in-place; that is the W25Q080 boot2's job
 * (docs/firmware.md: what a real board needs). rp2040js runs no bootrom and its flash is
 * plain memory, so this stage only does what the bootrom's hand-over would: point VTOR
 * at the vector table that follows, load the stack pointer, jump to Reset_Handler. */
    .syntax unified
    .cpu cortex-m0plus
    .thumb
    .section .boot2, "ax"
    .global boot2_entry
    .thumb_func
boot2_entry:
    ldr r0, =0x10000100  /* the vector table, right after boot2 */
    ldr r1, =0xE000ED08  /* VTOR */
    str r0, [r1]
    ldr r1, [r0]
    msr msp, r1
    ldr r1, [r0, #4]
    bx r1
    .ltorg
