// THIS HEADER FILE IS AUTOMATICALLY GENERATED -- DO NOT EDIT

/**
 * Copyright (c) 2024 Raspberry Pi Ltd.
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
// Trimmed for needle-driver (firmware/ports/rp2040/boot2): only the definitions
// boot2_w25q080.S and its helpers use, each line as it is in the pico-sdk's
// src/rp2040/hardware_regs/include/hardware/regs/m0plus.h (commit a1438dff1d38bd9c65dbd693f0e5db4b9ae91779).
#ifndef _HARDWARE_REGS_M0PLUS_H
#define _HARDWARE_REGS_M0PLUS_H
#ifndef _u
#define _u(x) x  // hardware/platform_defs.h: in assembly a number is a number
#endif
#define M0PLUS_VTOR_OFFSET _u(0x0000ed08)
#endif
