// A mode C reader of the virtual ME162 on node-serialport (its native binding clears c_lflag),
// for the serial-port matrix (tests/test_serial_styles.py).
//
//   node reader.js PORT SPEED [--early]
//
// SPEED is the virtual meter's time scale. Prints the readout; exit 0 when its BCC is right.
"use strict";
const { SerialPort } = require("serialport");

const [path, speedArg, flag] = process.argv.slice(2);
const scale = Number(speedArg);
const early = flag === "--early";
const nap = (seconds) => new Promise((resolve) => setTimeout(resolve, (seconds * 1000) / scale));

let buffer = Buffer.alloc(0);
let waiter = null;
function until(test, seconds) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const end = test(buffer);
      if (end >= 0) {
        const got = buffer.subarray(0, end);
        buffer = buffer.subarray(end);
        waiter = null;
        clearTimeout(timer);
        resolve(got);
        return true;
      }
      return false;
    };
    const timer = setTimeout(() => {
      waiter = null;
      reject(new Error(`timeout; got ${buffer.length} byte(s)`));
    }, (seconds * 1000) / scale);
    if (!check()) waiter = check;
  });
}

async function main() {
  const port = new SerialPort({ path, baudRate: 300, dataBits: 7, parity: "even", stopBits: 1, autoOpen: false });
  await new Promise((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  port.on("data", (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    if (waiter) waiter();
  });
  port.write("/?!\r\n");
  const ident = await until((b) => (b.indexOf("\r\n") >= 0 ? b.indexOf("\r\n") + 2 : -1), 2.5);
  if (ident[0] !== 0x2f) throw new Error(`no identification: ${ident}`);
  await nap(0.25);
  // The write's callback: the ACK is in the kernel's hands, so the switch below cannot
  // overtake it (node-serialport runs writes and updates on separate worker threads).
  await new Promise((resolve, reject) => port.write(Buffer.from("\x06050\r\n", "latin1"), (err) => (err ? reject(err) : resolve())));
  if (!early) await nap((6 * 10) / 300 + 0.03); // the ACK's wire time, then 30 ms
  await new Promise((resolve, reject) => port.update({ baudRate: 9600 }, (err) => (err ? reject(err) : resolve())));
  const msg = await until((b) => {
    const etx = b.indexOf(0x03);
    return etx >= 0 && etx + 1 < b.length ? etx + 2 : -1;
  }, 2.5);
  const stx = msg.indexOf(0x02);
  if (stx < 0) throw new Error("no STX");
  let bcc = 0;
  for (let i = stx + 1; i < msg.length - 1; i++) bcc ^= msg[i];
  if ((bcc & 0x7f) !== (msg[msg.length - 1] & 0x7f)) throw new Error("BCC mismatch");
  process.stdout.write(msg.subarray(stx + 1, msg.length - 2).toString("latin1"));
  await new Promise((resolve) => port.close(resolve));
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  },
);
