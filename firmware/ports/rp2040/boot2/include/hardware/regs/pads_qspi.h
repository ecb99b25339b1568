// THIS HEADER FILE IS AUTOMATICALLY GENERATED -- DO NOT EDIT

/**
 * Copyright (c) 2024 Raspberry Pi Ltd.
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
// Trimmed for needle-driver (firmware/ports/rp2040/boot2): only the definitions
// boot2_w25q080.S and its helpers use, each line as it is in the pico-sdk's
// src/rp2040/hardware_regs/include/hardware/regs/pads_qspi.h (commit a1438dff1d38bd9c65dbd693f0e5db4b9ae91779).
#ifndef _HARDWARE_REGS_PADS_QSPI_H
#define _HARDWARE_REGS_PADS_QSPI_H
#ifndef _u
#define _u(x) x  // hardware/platform_defs.h: in assembly a number is a number
#endif
#define PADS_QSPI_GPIO_QSPI_SCLK_DRIVE_LSB    _u(4)
#define PADS_QSPI_GPIO_QSPI_SCLK_OFFSET _u(0x00000004)
#define PADS_QSPI_GPIO_QSPI_SCLK_SLEWFAST_BITS   _u(0x00000001)
#define PADS_QSPI_GPIO_QSPI_SD0_OFFSET _u(0x00000008)
#define PADS_QSPI_GPIO_QSPI_SD0_SCHMITT_BITS   _u(0x00000002)
#define PADS_QSPI_GPIO_QSPI_SD1_OFFSET _u(0x0000000c)
#define PADS_QSPI_GPIO_QSPI_SD2_OFFSET _u(0x00000010)
#define PADS_QSPI_GPIO_QSPI_SD3_OFFSET _u(0x00000014)
#endif
