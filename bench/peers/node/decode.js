// Decode a readout with smartmeter-obis's D0 parser as many times as it can in a given time,
// the way its SerialRequestResponseTransport feeds it (the identification, then the data
// message), and print {"per_second": N}.  Usage: node decode.js READOUT.bin SECONDS
"use strict";
const fs = require("fs");
const D0Protocol = require("smartmeter-obis/lib/protocols/D0Protocol.js");

const raw = fs.readFileSync(process.argv[2]);
const seconds = Number(process.argv[3] || 3);
const text = raw.toString("latin1");
const cut = text.indexOf("\r\n") + 2;
const ident = Buffer.from(text.slice(0, cut), "latin1");
const data = Buffer.from(text.slice(cut), "latin1");

let last = null;
function decodeOnce() {
  const p = new D0Protocol({ protocol: "D0Protocol", obisFallbackMedium: 1, debug: 0, logger: () => {} },
    (err, result) => { if (!err) last = result; });
  p.initState();
  p.communicationState = 2;
  p.handleMessage(ident);
  p.communicationState = 4;
  p.handleMessage(data);
  return last;
}

const check = decodeOnce();
if (!check || Object.keys(check).length === 0) {
  console.error("smartmeter-obis decoded nothing");
  process.exit(1);
}
let n = 0;
const start = process.hrtime.bigint();
const deadline = start + BigInt(Math.round(seconds * 1e9));
while (process.hrtime.bigint() < deadline) {
  for (let i = 0; i < 50; i++) decodeOnce();
  n += 50;
}
const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ per_second: n / elapsed, data_sets: Object.keys(check).length }));
