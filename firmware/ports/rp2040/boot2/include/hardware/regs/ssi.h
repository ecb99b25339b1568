// THIS HEADER FILE IS AUTOMATICALLY GENERATED -- DO NOT EDIT

/**
 * Copyright (c) 2024 Raspberry Pi Ltd.
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
// Trimmed for needle-driver (firmware/ports/rp2040/boot2): only the definitions
// boot2_w25q080.S and its helpers use, each line as it is in the pico-sdk's
// src/rp2040/hardware_regs/include/hardware/regs/ssi.h (commit a1438dff1d38bd9c65dbd693f0e5db4b9ae91779).
#ifndef _HARDWARE_REGS_SSI_H
#define _HARDWARE_REGS_SSI_H
#ifndef _u
#define _u(x) x  // hardware/platform_defs.h: in assembly a number is a number
#endif
#define SSI_BAUDR_OFFSET _u(0x00000014)
#define SSI_CTRLR0_DFS_32_LSB    _u(16)
#define SSI_CTRLR0_OFFSET _u(0x00000000)
#define SSI_CTRLR0_SPI_FRF_LSB    _u(21)
#define SSI_CTRLR0_SPI_FRF_VALUE_QUAD _u(0x2)
#define SSI_CTRLR0_TMOD_LSB    _u(8)
#define SSI_CTRLR0_TMOD_VALUE_EEPROM_READ _u(0x3)
#define SSI_CTRLR0_TMOD_VALUE_TX_AND_RX _u(0x0)
#define SSI_CTRLR1_OFFSET _u(0x00000004)
#define SSI_DR0_OFFSET _u(0x00000060)
#define SSI_RX_SAMPLE_DLY_OFFSET _u(0x000000f0)
#define SSI_SPI_CTRLR0_ADDR_L_LSB    _u(2)
#define SSI_SPI_CTRLR0_INST_L_LSB    _u(8)
#define SSI_SPI_CTRLR0_INST_L_VALUE_8B _u(0x2)
#define SSI_SPI_CTRLR0_INST_L_VALUE_NONE _u(0x0)
#define SSI_SPI_CTRLR0_OFFSET _u(0x000000f4)
#define SSI_SPI_CTRLR0_TRANS_TYPE_LSB    _u(0)
#define SSI_SPI_CTRLR0_TRANS_TYPE_VALUE_1C2A _u(0x1)
#define SSI_SPI_CTRLR0_TRANS_TYPE_VALUE_2C2A _u(0x2)
#define SSI_SPI_CTRLR0_WAIT_CYCLES_LSB    _u(11)
#define SSI_SPI_CTRLR0_XIP_CMD_LSB    _u(24)
#define SSI_SR_BUSY_BITS   _u(0x00000001)
#define SSI_SR_OFFSET _u(0x00000028)
#define SSI_SR_TFE_BITS   _u(0x00000004)
#define SSI_SSIENR_OFFSET _u(0x00000008)
#endif
