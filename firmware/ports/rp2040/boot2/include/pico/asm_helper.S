/*
 * Copyright (c) 2020 Raspberry Pi (Trading) Ltd.
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
// Trimmed for needle-driver (firmware/ports/rp2040/boot2): the two macros
// boot2_w25q080.S uses, as they are in the pico-sdk's
// src/rp2040/pico_platform/include/pico/asm_helper.S (commit
// a1438dff1d38bd9c65dbd693f0e5db4b9ae91779); its #include "pico.h" (the SDK's
// configuration, none of which boot2 reads) is left out.

.macro pico_default_asm_setup
.syntax unified
.cpu cortex-m0plus
.thumb
.endm

// do not put align in here as it is used mid function sometimes
.macro regular_func x
.global \x
.type \x,%function
.thumb_func
\x:
.endm
