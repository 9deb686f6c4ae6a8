// The RP2040 runner: a MicroPython rp2 .uf2 in the rp2040js emulator (host only).
//
//   node rp2run.mjs --firmware F.uf2 --bootrom B.bin [--fs littlefs.img] [--romfs romfs.img]
//        [--spi 0 --cs 17 --rst 20 --int 21 --req-fd 3 --rep-fd 4] [--realtime 1]
//
// The USB CDC console is this process's stdin/stdout (raw bytes). With --spi the
// SPI peripheral's bytes go to a chip model in another process over two pipes
// (tools/emu/rp2/chipbus.py), which answers each exchange before the simulation
// goes on, so simulated time reflects only the bus clock:
//
//   to the model:  'C' level  | 'R' level  (CS / RST edges, no answer)
//                  'X' nanos(f64) n(u16) MOSI[n]  -> MISO[n] pins(u8)
//                  'P' nanos(f64)                 -> pins(u8)      (every ms of simulated time)
//   pins bit 0: the chip's INT line.
//
// A byte completes 8 / f_SPI after it starts (f_SPI as the firmware set it). The
// model is asked when a byte completes, together with every byte already waiting
// in the TX FIFO (up to 8 more): MISO of a byte never depends on later MOSI bytes,
// so the answers are exact and one pipe round trip serves up to 9 bytes.
//
// Simulated time never runs ahead of wall time (--realtime 1, the default): the
// firmware's timers stay honest against real peers (dnsmasq, the kernel's TCP).
// Exit codes: 0 on stdin EOF, 2 bad arguments or files, 3 the chip model died.
import fs from 'node:fs';
import { RP2040, USBCDC, ConsoleLogger, LogLevel } from 'rp2040js';

const FLASH_START = 0x10000000;
const FS_OFFSET = 0xa0000;          // littlefs partition of the RPI_PICO board (1408 KB)
const FS_SIZE = 1408 * 1024;
const ROMFS_OFFSET = 0x80000;        // ROMFS partition of a firmware built with MICROPY_HW_ROMFS_BYTES
const ROMFS_SIZE = 128 * 1024;
const CYCLE_NS = 8;                  // 125 MHz
const SLICE_MS = 20;                 // wall time per run slice before I/O gets a turn
const POLL_NS = 1e6;                 // the chip model is polled every simulated ms

function fail(code, msg) {
  process.stderr.write(`rp2run: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const a = { realtime: '1' };
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) fail(2, `bad argument ${argv[i]}`);
    a[argv[i].slice(2)] = argv[i + 1];
  }
  if (!a.firmware || !a.bootrom) fail(2, 'need --firmware F.uf2 and --bootrom B.bin');
  return a;
}

function readFile(path, what) {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    fail(2, `cannot read ${what} ${path}: ${e.message}`);
  }
}

// UF2: 512-byte blocks, magic 0x0A324655 0x9E5D5157 ... 0x0AB16F30, payload at 32.
function loadUF2(mcu, data, path) {
  if (data.length === 0 || data.length % 512) fail(2, `${path} is not a UF2 file (size ${data.length})`);
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  let blocks = 0;
  for (let off = 0; off < data.length; off += 512) {
    if (view.getUint32(off, true) !== 0x0a324655 || view.getUint32(off + 4, true) !== 0x9e5d5157 ||
        view.getUint32(off + 508, true) !== 0x0ab16f30) fail(2, `${path}: block ${off / 512} is not a UF2 block`);
    const flags = view.getUint32(off + 8, true);
    if (flags & 1) continue;                        // "not main flash"
    const addr = view.getUint32(off + 12, true);
    const size = view.getUint32(off + 16, true);
    if (addr < FLASH_START || addr + size > FLASH_START + mcu.flash.length || size > 476)
      fail(2, `${path}: block ${off / 512} targets 0x${addr.toString(16)}, outside the 2 MB flash (not an RP2040 image?)`);
    mcu.flash.set(data.subarray(off + 32, off + 32 + size), addr - FLASH_START);
    blocks++;
  }
  if (!blocks) fail(2, `${path} holds no flash blocks`);
}

const args = parseArgs(process.argv.slice(2));
const mcu = new RP2040();                    // its own SimulationClock (tick, nanosToNextAlarm)
const clock = mcu.clock;
mcu.logger = new ConsoleLogger(LogLevel.Error);
const rom = readFile(args.bootrom, 'bootrom');
if (rom.length !== 16384) fail(2, `${args.bootrom}: an RP2040 bootrom is 16384 bytes, not ${rom.length}`);
mcu.loadBootrom(new Uint32Array(rom.buffer, rom.byteOffset, rom.length / 4));
loadUF2(mcu, readFile(args.firmware, 'firmware'), args.firmware);
if (args.fs) {
  const img = readFile(args.fs, 'filesystem image');
  if (img.length > FS_SIZE) fail(2, `${args.fs}: ${img.length} bytes do not fit the ${FS_SIZE}-byte filesystem`);
  mcu.flash.set(img, FS_OFFSET);
}
if (args.romfs) {
  const img = readFile(args.romfs, 'ROMFS image');
  if (img.length > ROMFS_SIZE) fail(2, `${args.romfs}: ${img.length} bytes do not fit the ${ROMFS_SIZE}-byte ROMFS partition`);
  mcu.flash.set(img, ROMFS_OFFSET);
}

// --- console: USB CDC; the OUT request is held until there is input (a host NAKs) ---
const cdc = new USBCDC(mcu.usbCtrl);
const input = [];                    // bytes from stdin not yet in the CDC FIFO
let heldRead = null;
const cdcRead = mcu.usbCtrl.onEndpointRead;
mcu.usbCtrl.onEndpointRead = (ep, size) => {
  if (ep === cdc.outEndpoint && cdc.txFIFO.empty) heldRead = size;
  else cdcRead(ep, size);
};
function feedConsole() {
  while (input.length && !cdc.txFIFO.full) cdc.sendSerialByte(input.shift());
  if (heldRead !== null && !cdc.txFIFO.empty) {
    const size = heldRead;
    heldRead = null;
    cdcRead(cdc.outEndpoint, size);
  }
}
cdc.onSerialData = (buf) => process.stdout.write(Buffer.from(buf));
process.stdin.on('data', (chunk) => {
  for (const b of chunk) input.push(b);
});
process.stdin.on('end', () => process.exit(0));

// --- the chip model on the SPI bus ---
let chip = null;
if (args.spi !== undefined) chip = attachChip(Number(args.spi));

function attachChip(index) {
  const reqFd = Number(args['req-fd'] ?? 3);
  const repFd = Number(args['rep-fd'] ?? 4);
  const spi = mcu.spi[index];
  const pending = [];                // CS/RST edges not yet written
  const miso = [];                   // answers for bytes already sent ahead
  let current = -1;                  // the byte on the wire
  const stats = { exchanges: 0, bytes: 0 };
  const intPin = args.int !== undefined ? mcu.gpio[Number(args.int)] : null;

  function readExact(n) {
    const buf = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      let k;
      try {
        k = fs.readSync(repFd, buf, got, n - got, null);
      } catch (e) {
        if (e.code === 'EAGAIN') continue;
        fail(3, `chip model pipe: ${e.message}`);
      }
      if (k === 0) fail(3, 'the chip model closed its pipe (it died?)');
      got += k;
    }
    return buf;
  }
  function setPins(p) {
    if (intPin) intPin.setInputValue(!!(p & 1));
  }
  function ask(type, mosi) {
    const n = mosi ? mosi.length : 0;
    const head = Buffer.alloc(type === 'X' ? 11 : 9);
    head.write(type, 0, 'latin1');
    head.writeDoubleLE(clock.nanos, 1);
    if (type === 'X') head.writeUInt16LE(n, 9);
    pending.push(head);
    if (n) pending.push(Buffer.from(mosi));
    fs.writeSync(reqFd, Buffer.concat(pending));
    pending.length = 0;
    const rep = readExact(n + 1);
    setPins(rep[n]);
    return rep;
  }
  function edge(type, level) {
    pending.push(Buffer.from([type.charCodeAt(0), level ? 1 : 0]));
  }
  const done = clock.createAlarm(() => {
    if (!miso.length) {
      const bytes = [current, ...spi.txFIFO.items];
      const rep = ask('X', bytes);
      for (let i = 0; i < bytes.length; i++) miso.push(rep[i]);
      stats.exchanges++;
      stats.bytes += bytes.length;
    }
    spi.completeTransmit(miso.shift());
  });
  spi.onTransmit = (value) => {
    current = value;
    const f = spi.clockFrequency || 1e6;
    done.schedule((8 * 1e9) / f);
  };
  for (const [name, type] of [['cs', 'C'], ['rst', 'R']]) {
    if (args[name] === undefined) continue;
    const pin = mcu.gpio[Number(args[name])];
    let last = null;
    pin.addListener(() => {
      const level = pin.outputEnable ? pin.outputValue : true;   // released: pulled up
      if (level === last) return;
      last = level;
      if (type === 'C' && miso.length) miso.length = 0;          // never carry answers across frames
      edge(type, level);
    });
  }
  const poll = clock.createAlarm(() => {
    ask('P', null);
    poll.schedule(POLL_NS);
  });
  poll.schedule(POLL_NS);
  if (intPin) intPin.setInputValue(true);
  return stats;
}

// --- the run loop ---
const wallStart = process.hrtime.bigint();
const realtime = args.realtime !== '0';
mcu.core.PC = FLASH_START;

function wallNanos() {
  return Number(process.hrtime.bigint() - wallStart);
}

function run() {
  feedConsole();
  const until = performance.now() + SLICE_MS;
  const core = mcu.core;
  let idle = false;
  for (;;) {
    for (let i = 0; i < 20000; i++) {
      if (core.waiting) {
        let step = clock.nanosToNextAlarm;
        if (realtime && step > 0) step = Math.min(step, wallNanos() - clock.nanos);   // never ahead
        if (step <= 0) {
          idle = true;
          break;
        }
        clock.tick(step);
      } else {
        clock.tick(core.executeInstruction() * CYCLE_NS);
      }
    }
    if (idle || performance.now() >= until) break;
    if (realtime && clock.nanos > wallNanos()) break;
  }
  const ahead = realtime ? (clock.nanos - wallNanos()) / 1e6 : 0;
  if (ahead >= 1 || idle) setTimeout(run, Math.max(1, Math.min(ahead, 20)));
  else setImmediate(run);
}

process.on('SIGTERM', () => process.exit(0));
run();
