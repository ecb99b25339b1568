// run.mjs: the needle-driver firmware image on an emulated RP2040 (rp2040js), the rig at
// its pins, UART0 on a pty, throttled to real time. Started by run_rp2040.py (which
// opens the pty and the bench model's pipes and passes their descriptors):
//
//   node run.mjs --image nd-firmware.bin --pty-fd N --bench-in N --bench-out N
//
// The rig at the pins (docs/firmware.md, "The RP2040 port"):
//   * STEP/DIR of both TMC2209s (GP2/3 advance, GP6/7 rotation): each rising STEP edge
//     is a microstep in DIR's direction; every 250 µs of emulated time while they
//     change, the motor positions go to the bench model (firmware/bench, through
//     nd-bench-link), which answers with the carriage (thrust-limited: steps lost above
//     it), the force and the home switch;
//   * the encoder (GP12/13): quadrature transitions follow the carriage, 1 µm each,
//     spread over the next 200 µs;
//   * the HX711 (GP10 SCK in, GP11 DOUT out): a conversion every 12.5 ms (80 SPS) of the
//     bench's force with its noise; DOUT low when ready, shifted out MSB first on SCK's
//     rising edges, the 25th pulse ends it; SCK high for more than 60 µs powers it down;
//     none while the needle turns backward faster than 100 rpm (the bench's slip ring);
//   * the TMC2209s' UART (UART1): datagrams checked (sync, address, CRC); the microstep
//     resolution they set scales each STEP edge (the pins' default until then);
//   * the advance TMC2209's DIAG (GP16): high while the bench's stepper loses steps (the
//     load beyond its thrust: StallGuard's stall), low once the motor stops;
//   * the home switch (GP14, low at home), the e-stop (GP15, high when pressed: SIGUSR1
//     presses it, SIGUSR2 releases it);
//   * the watchdog: a reset it causes restarts the core (logged on stderr).
// Boot, at power-up and after a watchdog reset, is the bootrom's flash boot: boot2's CRC
// checked (a bad one exits with code 4), boot2 copied to SRAM and entered with lr = 0.
// Emulated time is held at or behind the wall clock, so a host's timeouts mean what
// they say; host bytes are fed as the 32-byte RX FIFO has room (no baud timing).
import fs from 'node:fs';
import { RP2040, GPIOPinState } from 'rp2040js';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
for (const need of ['image', 'pty-fd', 'bench-in', 'bench-out']) {
  if (args[need] === undefined) {
    process.stderr.write(`run.mjs: missing --${need}\n`);
    process.exit(2);
  }
}
const PTY_FD = Number(args['pty-fd']);
const BENCH_IN = Number(args['bench-in']); // we write requests here
const BENCH_OUT = Number(args['bench-out']); // and read replies here
const UNTHROTTLED = args.unthrottled === '1';
const DEBUG = process.env.ND_RP2040_DEBUG === '1'; // the rig's every physics step on stderr // for measuring the emulator's speed

const PIN = {
  advStep: 2, advDir: 3, rotStep: 6, rotDir: 7, hxSck: 10, hxDout: 11,
  encA: 12, encB: 13, home: 14, estop: 15, advDiag: 16,
};
// per full step (1.8°): the advance's 2 mm lead screw, the rotation direct
const ADV_NM_PER_FULL_STEP = 10_000;
const ROT_UCDEG_PER_FULL_STEP = 1_800_000;
const ENC_NM_PER_COUNT = 1000;
const ENC_SPREAD_NS = 200_000; // a physics period's count changes, spread over this
const HX711_PERIOD_NS = 12_500_000; // 80 SPS
const HX711_COUNTS_PER_MN = 160;
const HX711_POWER_DOWN_NS = 60_000;
const PHYSICS_PERIOD_NS = 250_000; // while the motors move; at rest, per conversion
const SLICE_NS = 100_000; // host bytes are exchanged between slices of emulated time
const BOOT2_B = 256;
const BOOT2_SRAM = 0x20041f00; // where the bootrom runs boot2 (SRAM's last 256 B)

const mcu = new RP2040();
mcu.logger = { debug() {}, info() {}, warn() {}, error: (c, m) => log(`${c}: ${m}`) };
const image = fs.readFileSync(args.image);
mcu.flash.set(image, 0);

function log(text) {
  process.stderr.write(`rp2040: ${text}\n`);
}

function boot() {
  // rp2040js's core.reset() sets SP and PC only: a watchdog reset taken inside an
  // interrupt handler left the core in handler mode, and the new boot's tick interrupt
  // was never taken. What a chip reset does to the core, here; the peripherals keep
  // their state (the firmware sets up every one it uses).
  const core = mcu.core;
  Object.assign(core, {
    IPSR: 0, PM: false, SPSEL: 0, nPRIV: false, currentMode: 0, waiting: false,
    pendingInterrupts: 0, enabledInterrupts: 0, interruptPriorities: [0xffffffff, 0, 0, 0],
    pendingNMI: false, pendingPendSV: false, pendingSVCall: false, pendingSystick: false,
    VTOR: 0, SHPR2: 0, SHPR3: 0,
  });
  core.reset();
  // What the bootrom's flash boot does (pico-bootrom, bootrom_main.c: _flash_boot; the
  // bootrom itself is not in the npm package): the first 256 bytes of flash to the top
  // of SRAM, run only if their CRC checks — else the chip stays in BOOTSEL mode (here:
  // exit, and run_rp2040.py says the harness did not start). boot2 is entered with
  // lr = 0: it then sets up XIP, VTOR and the stack and jumps to Reset_Handler.
  const boot2 = mcu.flash.subarray(0, BOOT2_B);
  const stored = new DataView(boot2.buffer, boot2.byteOffset).getUint32(BOOT2_B - 4, true);
  if (bootromCrc32(boot2.subarray(0, BOOT2_B - 4)) !== stored) {
    log(`bootrom: boot2 CRC mismatch (stored 0x${stored.toString(16)}): no flash boot, ` +
      'the chip would show up as the RPI-RP2 drive');
    process.exit(4);
  }
  mcu.sram.set(boot2, BOOT2_SRAM - 0x20000000);
  core.SP = BOOT2_SRAM; // the bootrom's stack is below the copy
  core.LR = 0;
  core.PC = BOOT2_SRAM;
}

// The bootrom's crc32_small (bootrom_misc.S): CRC-32 MSB first, polynomial 0x04C11DB7,
// seeded 0xFFFFFFFF, no final xor — over boot2's first 252 bytes.
function bootromCrc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte << 24;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}

// ------------------------------------------------------------------ UART0 <-> pty
let toHost = [];
let fromHost = Buffer.alloc(0);
let hostReads = 0;
mcu.uart[0].onByte = (b) => {
  toHost.push(b);
};

function exchangeHost() {
  const buf = Buffer.alloc(4096);
  if (fromHost.length < 256) {
    try {
      const n = fs.readSync(PTY_FD, buf, 0, buf.length, null);
      if (n > 0) fromHost = Buffer.concat([fromHost, buf.subarray(0, n)]);
      hostReads += n;
    } catch (e) {
      if (e.code !== 'EAGAIN' && e.code !== 'EIO') throw e; // EIO: no host on the pty
    }
  }
  const uart = mcu.uart[0];
  let fed = 0;
  while (fed < fromHost.length && !uart.rxFIFO.full) uart.feedByte(fromHost[fed++]);
  if (fed) fromHost = fromHost.subarray(fed);
  if (toHost.length) {
    const out = Buffer.from(toHost);
    toHost = [];
    try {
      fs.writeSync(PTY_FD, out);
    } catch (e) {
      // the pty is full (no host reading): the bytes are lost, as on a cable no one reads
      if (e.code !== 'EAGAIN' && e.code !== 'EIO') throw e;
    }
  }
}

// ------------------------------------------------------------------ steppers
// ------------------------------------------------------------------ TMC2209s on UART1
// Each driver's microstep resolution is what its registers say: until a valid write of
// GCONF.mstep_reg_select and CHOPCONF.MRES, its MS1/MS2 pins' (which also set its
// address: 00 -> 1/8 for the advance, 01 -> 1/32 for the rotation) — a board whose UART
// set-up failed moves the wrong distances and the suite sees it.
const MICROSTEPS_BY_PINS = [8, 32];
const tmc = MICROSTEPS_BY_PINS.map((m) => ({ microsteps: m, gconf: 0, chopconf: 0x10000053 }));
const tmcStats = { writes: 0, bad: 0 };
let tmcBytes = [];
function tmcCrc(bytes) {
  let crc = 0;
  for (let byte of bytes) {
    for (let bit = 0; bit < 8; bit++) {
      crc = ((crc >> 7) ^ (byte & 1)) !== 0 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
      byte >>= 1;
    }
  }
  return crc;
}
mcu.uart[1].onByte = (b) => {
  tmcBytes.push(b);
  if (tmcBytes[0] !== 0x05) tmcBytes.shift(); // hunt for the sync byte
  if (tmcBytes.length < 8) return;
  const d = tmcBytes;
  tmcBytes = [];
  if (tmcCrc(d.slice(0, 7)) !== d[7] || d[1] > 1 || !(d[2] & 0x80)) {
    tmcStats.bad++;
    return;
  }
  tmcStats.writes++;
  const drv = tmc[d[1]];
  const value = ((d[3] << 24) | (d[4] << 16) | (d[5] << 8) | d[6]) >>> 0;
  const reg = d[2] & 0x7f;
  if (reg === 0x00) drv.gconf = value;
  if (reg === 0x6c) drv.chopconf = value;
  drv.microsteps = drv.gconf & (1 << 7) ? 256 >> ((drv.chopconf >>> 24) & 0xf) : MICROSTEPS_BY_PINS[d[1]];
};

// ------------------------------------------------------------------ steppers
const motor = { advNm: 0, rotUcdeg: 0 };
function stepper(stepPin, dirPin, step) {
  mcu.gpio[stepPin].addListener((state, old) => {
    if (state === GPIOPinState.High && old !== GPIOPinState.High) {
      step(mcu.gpio[dirPin].value === GPIOPinState.High ? 1 : -1);
    }
  });
}
stepper(PIN.advStep, PIN.advDir, (dir) => {
  motor.advNm += (dir * ADV_NM_PER_FULL_STEP) / tmc[0].microsteps;
});
stepper(PIN.rotStep, PIN.rotDir, (dir) => {
  motor.rotUcdeg += (dir * ROT_UCDEG_PER_FULL_STEP) / tmc[1].microsteps;
});

// ------------------------------------------------------------------ bench model link
const request = Buffer.alloc(16);
const reply = Buffer.alloc(16);
const rig = { encoderNm: 0, forceMn: 0, forceValid: true, home: false, stalling: false };
let diagRises = 0;
function readExactly(fd, buf) {
  let got = 0;
  while (got < buf.length) {
    let n;
    try {
      n = fs.readSync(fd, buf, got, buf.length - got, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      throw e;
    }
    if (n === 0) {
      log('the bench model ended');
      process.exit(3);
    }
    got += n;
  }
}
function physics() {
  request.writeBigInt64LE(BigInt(Math.round(motor.advNm)), 0);
  request.writeBigInt64LE(BigInt(Math.round(motor.rotUcdeg)), 8);
  fs.writeSync(BENCH_IN, request);
  readExactly(BENCH_OUT, reply);
  rig.encoderNm = Number(reply.readBigInt64LE(0));
  rig.forceMn = reply.readInt32LE(8);
  rig.forceValid = reply[12] !== 0;
  rig.home = reply[13] !== 0;
  if (reply[14] !== 0 && !rig.stalling) diagRises++;
  rig.stalling = reply[14] !== 0;
  if (DEBUG) {
    log(`t ${mcu.clock.nanos / 1000} us motor ${Math.round(motor.advNm)} nm ` +
      `carriage ${rig.encoderNm} nm encoder ${encoder.count} counts force ${rig.forceMn} mN`);
  }
  setInput(PIN.home, !rig.home); // closed to GND at home
  setInput(PIN.advDiag, rig.stalling);
  encoder.target = Math.floor(rig.encoderNm / ENC_NM_PER_COUNT);
  const n = Math.abs(encoder.target - encoder.count);
  if (n > 0) {
    // (re)paced: what is still to go, spread over the next 200 µs
    encoder.edgeNs = Math.max(1000, Math.floor(ENC_SPREAD_NS / n));
    encoder.alarmSet = true;
    encoderAlarm.schedule(encoder.edgeNs);
  }
}
// the bench is asked only when a motor moved (IPC costs), and at each HX711 conversion
const asked = { adv: 0, rot: 0 };
function physicsIfMoved() {
  if (motor.advNm !== asked.adv || motor.rotUcdeg !== asked.rot) {
    asked.adv = motor.advNm;
    asked.rot = motor.rotUcdeg;
    physics();
  }
}
const inputs = new Map();
function setInput(pin, value) {
  // rp2040js counts an edge on every call: drive a pin only when it changes
  if (inputs.get(pin) !== value) {
    inputs.set(pin, value);
    mcu.gpio[pin].setInputValue(value);
  }
}
const physicsAlarm = mcu.clock.createAlarm(() => {
  physicsIfMoved();
  physicsAlarm.schedule(PHYSICS_PERIOD_NS);
});

// ------------------------------------------------------------------ encoder
const GRAY = [0b00, 0b10, 0b11, 0b01]; // (A << 1) | B, forward: A leads B
const encoder = { count: 0, target: 0, alarmSet: false, edgeNs: 1000 };
function showEncoder() {
  const ab = GRAY[((encoder.count % 4) + 4) % 4];
  setInput(PIN.encA, (ab & 2) !== 0);
  setInput(PIN.encB, (ab & 1) !== 0);
}
const encoderAlarm = mcu.clock.createAlarm(() => {
  encoder.alarmSet = false;
  if (encoder.count === encoder.target) return;
  encoder.count += encoder.target > encoder.count ? 1 : -1;
  showEncoder();
  if (encoder.count !== encoder.target) {
    encoder.alarmSet = true;
    encoderAlarm.schedule(encoder.edgeNs);
  }
});

// ------------------------------------------------------------------ HX711
const hx = { ready: false, word: 0, pulses: 0, sckHighAt: 0, lateReads: 0, rotAt: 0, silent: 0 };
// The bench's slip ring (firmware/bench: lc_silent_backward_mrpm, 100 rpm by default, what
// rig.toml's [load_cell] silent_backward_rpm declares): turning backward faster than that
// over a conversion period, it loses contact and no conversion arrives (DOUT stays high).
// Judged here, not by nd-bench-link: the bench counts the turn per call as per 1 ms tick,
// and the harness asks it at other intervals.
const SLIP_RING_SILENT_BACKWARD_RPM = 100;
const SLIP_RING_SILENT_UCDEG = (SLIP_RING_SILENT_BACKWARD_RPM * 360e6 * HX711_PERIOD_NS) / 60e9;
function hxConvert() {
  const turned = motor.rotUcdeg - hx.rotAt;
  hx.rotAt = motor.rotUcdeg;
  if (-turned > SLIP_RING_SILENT_UCDEG) {
    hx.silent++;
    return;
  }
  physics(); // the force now, with a fresh draw of the cell's noise
  let counts = Math.round(rig.forceMn * HX711_COUNTS_PER_MN);
  if (!rig.forceValid) counts = rig.forceMn >= 0 ? 0x7fffff : -0x800000; // at its rail
  counts = Math.max(-0x800000, Math.min(0x7fffff, counts));
  hx.word = counts & 0xffffff;
  hx.ready = true;
  hx.pulses = 0;
  setInput(PIN.hxDout, false);
}
const hxAlarm = mcu.clock.createAlarm(() => {
  hxConvert();
  hxAlarm.schedule(HX711_PERIOD_NS);
});
mcu.gpio[PIN.hxSck].addListener((state, old) => {
  if (state === GPIOPinState.High && old !== GPIOPinState.High) {
    hx.sckHighAt = mcu.clock.nanos;
    if (!hx.ready) return;
    hx.pulses++;
    if (hx.pulses <= 24) setInput(PIN.hxDout, ((hx.word >> (24 - hx.pulses)) & 1) !== 0);
    else {
      hx.ready = false; // the 25th pulse: channel A, gain 128 next
      setInput(PIN.hxDout, true);
    }
  } else if (state === GPIOPinState.Low && old === GPIOPinState.High) {
    if (mcu.clock.nanos - hx.sckHighAt > HX711_POWER_DOWN_NS) {
      // SCK held high > 60 µs: the chip powers down and restarts its conversion cycle
      hx.lateReads++;
      log(`HX711: SCK high ${(mcu.clock.nanos - hx.sckHighAt) / 1000} us: powered down`);
      hx.ready = false;
      setInput(PIN.hxDout, true);
    }
  }
});

// ------------------------------------------------------------------ the tick (LED, GP25)
const tick = { startNs: 0, count: 0, lateMax: 0, longest: 0 };
mcu.gpio[25].addListener((state, old) => {
  if (state === GPIOPinState.High && old !== GPIOPinState.High) {
    tick.startNs = mcu.clock.nanos;
    tick.count++;
    tick.lateMax = Math.max(tick.lateMax, mcu.clock.nanos % 1e6);
  } else if (state === GPIOPinState.Low && old === GPIOPinState.High) {
    const took = mcu.clock.nanos - tick.startNs;
    if (DEBUG && (took > 100_000 || tick.startNs % 1e6 > 100_000)) {
      log(`tick at ${tick.startNs / 1000} us took ${took / 1000} us`);
    }
    tick.longest = Math.max(tick.longest, took);
  }
});

// ------------------------------------------------------------------ e-stop, watchdog
setInput(PIN.estop, false); // the NC contact is closed: not pressed
process.on('SIGUSR1', () => {
  log('e-stop pressed');
  setInput(PIN.estop, true);
});
process.on('SIGUSR2', () => {
  log('e-stop released');
  setInput(PIN.estop, false);
});
let resets = 0;
const watchdog = mcu.peripherals[0x40058];
watchdog.onWatchdogTrigger = () => {
  resets++;
  watchdog.writeUint32(0, 0); // a chip reset stops the watchdog (REASON stays: TIMER)
  log(`watchdog reset #${resets} at ${(mcu.clock.nanos / 1e6).toFixed(1)} ms (pc 0x${mcu.core.PC.toString(16)})`);
  boot();
};

// ------------------------------------------------------------------ run, throttled
let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => (stopping = true));

const cycleNs = 1e9 / 125e6;
function runFor(deltaNs) {
  const { clock, core } = mcu;
  const until = clock.nanos + deltaNs;
  while (clock.nanos < until) {
    if (core.waiting && core.pendingInterrupts & core.enabledInterrupts && core.checkForInterrupts()) {
      // rp2040js 1.4.1 sleeps through an interrupt that was already pending when WFI
      // ran (it wakes on a new one only): the encoder's edges waited for the next tick,
      // two transitions came together and read as a lost count. Silicon's WFI returns.
      core.waiting = false;
    } else if (core.waiting) {
      const next = clock.nanosToNextAlarm;
      const left = until - clock.nanos;
      clock.tick(next > 0 && next < left ? next : left);
    } else {
      clock.tick(core.executeInstruction() * cycleNs);
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = process.hrtime.bigint();
// the emulator's own speed, whatever the throttle: emulated seconds per CPU second of this
// process (every thread: the JIT and the collector too) — what it would run at with a
// core to itself; the wall-clock ratio says what it got
const cpuAtStart = process.cpuUsage();
const MAX_LAG_NS = 5e6;
let wallOffsetNs = 0; // wall time given up while the emulator was behind
let slipNs = 0;
const wallNs = () => Number(process.hrtime.bigint() - started) - wallOffsetNs;
let instructionsAtReport = 0;

setInput(PIN.hxDout, true);
showEncoder();
physics();
boot();
physicsAlarm.schedule(PHYSICS_PERIOD_NS);
hxAlarm.schedule(HX711_PERIOD_NS);

async function main() {
  let slices = 0;
  let ready = false;
  while (!stopping) {
    runFor(SLICE_NS);
    if (!ready && tick.count > 20) {
      // booted and ticking (and the JIT warmed a little): run_rp2040.py prints the pty
      process.stdout.write('ready\n');
      ready = true;
    }
    exchangeHost();
    const ahead = mcu.clock.nanos - wallNs();
    if (!UNTHROTTLED && ahead > 1e6) await sleep(Math.floor(ahead / 1e6));
    else if (!UNTHROTTLED && ahead < -MAX_LAG_NS) {
      // behind (JIT warm-up, a loaded machine): let the time go rather than race to
      // catch up — at 5× real time a host's heartbeats 50 ms apart would arrive 250 ms
      // apart in emulated time, and the device's watchdog would trip
      wallOffsetNs += -ahead - MAX_LAG_NS;
      slipNs += -ahead - MAX_LAG_NS;
    }
    else if (++slices % 20 === 0) await new Promise((r) => setImmediate(r)); // signals
  }
  const emulated = mcu.clock.nanos / 1e9;
  const wall = (wallNs() + wallOffsetNs) / 1e9;
  const cpu = process.cpuUsage(cpuAtStart);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  log(
    `stopped: ${emulated.toFixed(2)} s emulated in ${wall.toFixed(2)} s ` +
      `(${(emulated / wall).toFixed(3)} of real time; ${cpuS.toFixed(2)} s of CPU: ` +
      `${(emulated / cpuS).toFixed(2)}× real time per CPU second), watchdog resets ${resets}, ` +
      `HX711 power-downs ${hx.lateReads}, conversions lost in the slip ring ${hx.silent}, ` +
      `host bytes in ${hostReads}, ` +
      `TMC2209 writes ${tmcStats.writes} (bad ${tmcStats.bad}), ` +
      `microsteps ${tmc[0].microsteps}/${tmc[1].microsteps}, DIAG stalls ${diagRises}, ` +
      `${(slipNs / 1e9).toFixed(2)} s behind and let go, longest tick ${tick.longest / 1000} us`,
  );
  void instructionsAtReport;
  process.exit(0);
}
main();
