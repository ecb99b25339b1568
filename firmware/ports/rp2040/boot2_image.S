/* boot2_image.S: the first 256 bytes of flash — the W25Q080 second-stage boot (boot2/,
 * the pico-sdk's, BSD-3) as boot2_pad.py padded it and ended it with the bootrom's CRC.
 * On silicon the bootrom copies these bytes to SRAM, checks the CRC and runs them: they
 * set up the flash for execute-in-place, point VTOR at the vector table at 0x10000100,
 * load the stack pointer from it and jump to Reset_Handler. The emulator's harness does
 * the bootrom's part (harness/run.mjs): the image it runs is the one a Pico is flashed
 * with. */
    .section .boot2, "ax"
    .incbin BOOT2_PADDED
