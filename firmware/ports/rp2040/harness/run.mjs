// run.mjs: the needle-driver firmware image on an emulated RP2040 (rp2040js), the rig at
// its pins, UART0 on a pty, throttled to real time. Started by run_rp2040.py (which
// opens the pty and the bench model's pipes and passes their descriptors):
//
//   node run.mjs --image nd-firmware.bin --pty-fd N --bench-in N --bench-out N
//
// The rig at the pins (docs/firmware.md, "The RP2040 port"):
//   * STEP/DIR of both TMC2209s (GP2/3 advance, GP6/7 rotation): each rising STEP edge
//     is a microstep in DIR's direction; once per emulated millisecond the motor
//     positions go to the bench model (firmware/bench, through nd-bench-link), which
//     answers with the carriage (thrust-limited: steps lost above it), the force and
//     the home switch;
//   * the encoder (GP12/13): quadrature edges follow the carriage, 1 µm a count, one
//     transition at most every ENC_EDGE_NS;
//   * the HX711 (GP10 SCK in, GP11 DOUT out): a conversion every 12.5 ms (80 SPS) of the
//     bench's force with its noise; DOUT low when ready, shifted out MSB first on SCK's
//     rising edges, the 25th pulse ends it; SCK high for more than 60 µs powers it down;
//   * the home switch (GP14, low at home), the e-stop (GP15, high when pressed: SIGUSR1
//     presses it, SIGUSR2 releases it);
//   * the watchdog: a reset it causes restarts the core (logged on stderr).
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
const UNTHROTTLED = args.unthrottled === '1'; // for measuring the emulator's speed

const PIN = {
  advStep: 2, advDir: 3, rotStep: 6, rotDir: 7, hxSck: 10, hxDout: 11,
  encA: 12, encB: 13, home: 14, estop: 15,
};
const ADV_NM_PER_MICROSTEP = 625n;
const ROT_UCDEG_PER_MICROSTEP = 112500n;
const ENC_NM_PER_COUNT = 1000;
const ENC_EDGE_NS = 10_000;
const HX711_PERIOD_NS = 12_500_000; // 80 SPS
const HX711_COUNTS_PER_MN = 160;
const HX711_POWER_DOWN_NS = 60_000;
const PHYSICS_PERIOD_NS = 1_000_000;
const SLICE_NS = 100_000; // host bytes are exchanged between slices of emulated time
const FLASH_BASE = 0x10000000;

const mcu = new RP2040();
mcu.logger = { debug() {}, info() {}, warn() {}, error: (c, m) => log(`${c}: ${m}`) };
const image = fs.readFileSync(args.image);
mcu.flash.set(image, 0);

function log(text) {
  process.stderr.write(`rp2040: ${text}\n`);
}

function boot() {
  // no bootrom (it is not redistributable here): start at boot2, as its hand-over would
  mcu.core.reset();
  mcu.core.SP = 0x20042000;
  mcu.core.PC = FLASH_BASE;
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
const motor = { adv: 0n, rot: 0n };
function stepper(stepPin, dirPin, axis) {
  mcu.gpio[stepPin].addListener((state, old) => {
    if (state === GPIOPinState.High && old !== GPIOPinState.High) {
      motor[axis] += mcu.gpio[dirPin].value === GPIOPinState.High ? 1n : -1n;
    }
  });
}
stepper(PIN.advStep, PIN.advDir, 'adv');
stepper(PIN.rotStep, PIN.rotDir, 'rot');

// ------------------------------------------------------------------ bench model link
const request = Buffer.alloc(16);
const reply = Buffer.alloc(16);
const rig = { encoderNm: 0, forceMn: 0, forceValid: true, home: false };
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
  request.writeBigInt64LE(motor.adv * ADV_NM_PER_MICROSTEP, 0);
  request.writeBigInt64LE(motor.rot * ROT_UCDEG_PER_MICROSTEP, 8);
  fs.writeSync(BENCH_IN, request);
  readExactly(BENCH_OUT, reply);
  rig.encoderNm = Number(reply.readBigInt64LE(0));
  rig.forceMn = reply.readInt32LE(8);
  rig.forceValid = reply[12] !== 0;
  rig.home = reply[13] !== 0;
  setInput(PIN.home, !rig.home); // closed to GND at home
  encoder.target = Math.floor(rig.encoderNm / ENC_NM_PER_COUNT);
  if (encoder.count !== encoder.target && !encoder.alarmSet) {
    encoder.alarmSet = true;
    encoderAlarm.schedule(ENC_EDGE_NS);
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
  physics();
  physicsAlarm.schedule(PHYSICS_PERIOD_NS);
});

// ------------------------------------------------------------------ encoder
const GRAY = [0b00, 0b10, 0b11, 0b01]; // (A << 1) | B, forward: A leads B
const encoder = { count: 0, target: 0, alarmSet: false };
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
    encoderAlarm.schedule(ENC_EDGE_NS);
  }
});

// ------------------------------------------------------------------ HX711
const hx = { ready: false, word: 0, pulses: 0, sckHighAt: 0, poweredDown: false, lateReads: 0 };
function hxConvert() {
  if (hx.poweredDown) return;
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
mcu.peripherals[0x40058].onWatchdogTrigger = () => {
  resets++;
  log(`watchdog reset #${resets} at ${(mcu.clock.nanos / 1e6).toFixed(1)} ms`);
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
    if (core.waiting) {
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
const wallNs = () => Number(process.hrtime.bigint() - started);
let instructionsAtReport = 0;

setInput(PIN.hxDout, true);
showEncoder();
physics();
boot();
physicsAlarm.schedule(PHYSICS_PERIOD_NS);
hxAlarm.schedule(HX711_PERIOD_NS);

async function main() {
  let slices = 0;
  while (!stopping) {
    runFor(SLICE_NS);
    exchangeHost();
    const ahead = mcu.clock.nanos - wallNs();
    if (!UNTHROTTLED && ahead > 1e6) await sleep(Math.floor(ahead / 1e6));
    else if (++slices % 20 === 0) await new Promise((r) => setImmediate(r)); // signals
  }
  const emulated = mcu.clock.nanos / 1e9;
  const wall = wallNs() / 1e9;
  log(
    `stopped: ${emulated.toFixed(2)} s emulated in ${wall.toFixed(2)} s ` +
      `(${(emulated / wall).toFixed(3)} of real time), watchdog resets ${resets}, ` +
      `HX711 power-downs ${hx.lateReads}, host bytes in ${hostReads}`,
  );
  void instructionsAtReport;
  process.exit(0);
}
main();
