// Adapter: smartmeter-obis (npm, the D0 reader of ioBroker's and Node-RED's smart meter
// adapters) as a reader under test.
//
//     node smartmeter_obis_reader.js MODULES_DIR PORT
//
// Builds its D0Protocol and SerialRequestResponseTransport the way its init() does, for one
// reading (requestInterval -1), and prints the result in the JSON schema of me162-read --json.
// Values are taken from each measurement's rawValue (the text between the brackets, which it
// keeps), addresses from its idToString() with no fallback medium, so that nothing is added
// to what it parsed.  Its identification fields are reported as it keeps them.  Exit 1 with
// its error on the first error it reports.
"use strict";
const path = require("path");

const [modules, port] = process.argv.slice(2);
if (!modules || !port) {
  console.error("usage: node smartmeter_obis_reader.js MODULES_DIR PORT");
  process.exit(2);
}
let D0Protocol, Transport;
try {
  const root = path.join(modules, "node_modules", "smartmeter-obis");
  D0Protocol = require(path.join(root, "lib", "protocols", "D0Protocol.js"));
  Transport = require(path.join(root, "lib", "transports", "SerialRequestResponseTransport.js"));
} catch (e) {
  console.error("smartmeter_obis_reader: smartmeter-obis is not installed in " + modules + " (npm install smartmeter-obis)");
  process.exit(2);
}

const options = {
  protocol: "D0Protocol",
  transport: "SerialRequestResponseTransport",
  transportSerialPort: port,
  transportSerialBaudrate: 300,
  protocolD0WakeupCharacters: 0,
  protocolD0DeviceAddress: "",
  requestInterval: -1,
  transportSerialMessageTimeout: 30000,
  debug: 0,
  logger: (msg) => console.error("smartmeter-obis: " + msg),
};

let transport = null;
let done = false;
function finish(code, text, stream) {
  if (done) return;
  done = true;
  stream.write(text + "\n", () => {
    if (transport) transport.stop(() => process.exit(code));
    else process.exit(code);
  });
}

const protocol = new D0Protocol(options, (err, obisResult) => {
  if (err) {
    finish(1, "smartmeter_obis_reader: " + (err.message || err), process.stderr);
    return;
  }
  const sets = Object.values(obisResult).map((m, i) => ({
    line: i + 1,
    address: m.idToString(),
    values: String(m.rawValue === undefined ? "" : m.rawValue).split(", ").map((v) => {
      const star = v.indexOf("*");
      return star === -1 ? { value: v, unit: "" } : { value: v.slice(0, star), unit: v.slice(star + 1) };
    }),
    raw: "",
  }));
  const doc = {
    identification: {
      manufacturer: protocol.deviceManufacturer,
      ident: protocol.deviceIdentification,
      mode: protocol.commMode,
      baud: protocol.commBaudrateChangeover,
    },
    data_sets: sets,
  };
  finish(0, JSON.stringify(doc), process.stdout);
});
transport = new Transport(options, protocol);
transport.init();
transport.process();
