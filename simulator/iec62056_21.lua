-- IEC 62056-21 (modes A to D) for Wireshark and tshark, shipped with me162.
--
-- Decodes the packets of `me162-sim capture export --pcapng` (link type USER0, one packet per
-- message, the direction in the packet flags): the request, the identification (manufacturer,
-- speed letter, mode, identification), the option select (V, Z, Y), data messages and partial
-- blocks with their data sets (address, value, unit), commands (P0, P1, R1, W1, B0, ...), ACK
-- and NAK, and every block check character with its verdict (an expert warning when wrong).
--
-- Install for Wireshark:   me162-sim capture dissector --install
-- One run of tshark:       tshark -X lua_script:$(me162-sim capture dissector) -r FILE.pcapng -V

local p = Proto("iec62056_21", "IEC 62056-21 optical link (me162)")

local f = {
  kind = ProtoField.string("iec62056_21.kind", "Message"),
  direction = ProtoField.string("iec62056_21.direction", "Direction"),
  address = ProtoField.string("iec62056_21.request.address", "Device address"),
  manufacturer = ProtoField.string("iec62056_21.ident.manufacturer", "Manufacturer"),
  baud_char = ProtoField.string("iec62056_21.ident.baud_char", "Speed letter (Z)"),
  mode = ProtoField.string("iec62056_21.ident.mode", "Protocol mode"),
  baud = ProtoField.uint32("iec62056_21.ident.baud", "Proposed speed (Bd)"),
  ident = ProtoField.string("iec62056_21.ident.identification", "Identification"),
  opt_v = ProtoField.string("iec62056_21.option.v", "Protocol control (V)"),
  opt_z = ProtoField.string("iec62056_21.option.z", "Speed (Z)"),
  opt_y = ProtoField.string("iec62056_21.option.y", "Mode control (Y)"),
  command = ProtoField.string("iec62056_21.command", "Command"),
  block = ProtoField.string("iec62056_21.block", "Data block"),
  dataset = ProtoField.string("iec62056_21.dataset", "Data set"),
  ds_address = ProtoField.string("iec62056_21.dataset.address", "Address"),
  ds_value = ProtoField.string("iec62056_21.dataset.value", "Value"),
  ds_unit = ProtoField.string("iec62056_21.dataset.unit", "Unit"),
  bcc = ProtoField.uint8("iec62056_21.bcc", "BCC", base.HEX),
  bcc_computed = ProtoField.uint8("iec62056_21.bcc.computed", "BCC computed", base.HEX),
  bcc_status = ProtoField.string("iec62056_21.bcc.status", "BCC status"),
}
p.fields = {}
for _, field in pairs(f) do table.insert(p.fields, field) end

local e_bcc = ProtoExpert.new("iec62056_21.bcc.wrong", "BCC wrong", expert.group.CHECKSUM, expert.severity.WARN)
local e_noise = ProtoExpert.new("iec62056_21.noise", "Bytes that form no message", expert.group.MALFORMED, expert.severity.NOTE)
p.experts = { e_bcc, e_noise }

local BAUD_C = { ["0"] = 300, ["1"] = 600, ["2"] = 1200, ["3"] = 2400, ["4"] = 4800, ["5"] = 9600, ["6"] = 19200 }
local BAUD_B = { A = 600, B = 1200, C = 2400, D = 4800, E = 9600, F = 19200 }
local Y_MEANING = { ["0"] = "data readout", ["1"] = "programming mode", ["6"] = "manufacturer specific" }

local function xor7(bytes, from, to)
  local x = 0
  for i = from, to do x = bit.bxor(x, bytes:get_index(i)) end
  return bit.band(x, 0x7f)
end

local function add_datasets(tree, buf, first, last)
  -- data sets: ADDRESS(VALUE*UNIT), one or more per line, lines ending CR LF
  local text = buf(first, last - first + 1):string()
  local pos = 0
  for addr, body in text:gmatch("([^%(%)\r\n!]*)%(([^%)]*)%)") do
    local start = text:find(addr .. "(" .. body .. ")", pos + 1, true) or (pos + 1)
    local len = #addr + #body + 2
    local item = tree:add(f.dataset, buf(first + start - 1, len), addr .. "(" .. body .. ")")
    if addr ~= "" then item:add(f.ds_address, buf(first + start - 1, #addr), addr) end
    local value, unit = body:match("^([^*]*)%*(.*)$")
    if value == nil then value = body end
    item:add(f.ds_value, buf(first + start + #addr, #value), value)
    if unit ~= nil then item:add(f.ds_unit, buf(first + start + #addr + #value + 1, #unit), unit) end
    pos = start + len - 1
  end
end

local function add_bcc(tree, pinfo, buf, bytes, last)
  -- the BCC covers everything after SOH/STX up to and including ETX/EOT
  local got = bytes:get_index(last)
  local want = xor7(bytes, 1, last - 1)
  tree:add(f.bcc, buf(last, 1))
  tree:add(f.bcc_computed, want):set_generated()
  if bit.band(got, 0x7f) == want then
    tree:add(f.bcc_status, "valid"):set_generated()
    return "BCC ok"
  end
  tree:add(f.bcc_status, "invalid"):set_generated()
  tree:add_proto_expert_info(e_bcc, string.format("BCC 0x%02x, computed 0x%02x", got, want))
  return "BCC WRONG"
end

function p.dissector(buf, pinfo, root)
  local n = buf:len()
  if n == 0 then return 0 end
  pinfo.cols.protocol = "IEC 62056-21"
  local bytes = buf:bytes()
  local first = bytes:get_index(0)
  local tree = root:add(p, buf())
  local info
  -- the export puts the direction in the packet flags: outbound = from the reader
  if pinfo.p2p_dir == 0 then
    pinfo.cols.src, pinfo.cols.dst = "reader", "meter"
    tree:add(f.direction, "reader -> meter"):set_generated()
  elseif pinfo.p2p_dir == 1 then
    pinfo.cols.src, pinfo.cols.dst = "meter", "reader"
    tree:add(f.direction, "meter -> reader"):set_generated()
  end

  if first == 0x2f and n >= 2 and bytes:get_index(1) == 0x3f then -- "/?"
    tree:add(f.kind, "request")
    local bang = buf():string():find("!", 3, true)
    local address = bang and buf(2, bang - 3):string() or ""
    tree:add(f.address, bang and buf(2, bang - 3) or buf(2, 0), address)
    info = address == "" and "Request /?!" or ("Request /?" .. address .. "!")
  elseif first == 0x2f then -- "/XXXZ ident"
    tree:add(f.kind, "identification")
    local line = buf():string():gsub("\r\n$", "")
    if #line >= 5 then
      local z = line:sub(5, 5)
      tree:add(f.manufacturer, buf(1, 3))
      tree:add(f.baud_char, buf(4, 1))
      local mode, baud = "A", 300
      if BAUD_C[z] then mode, baud = "C", BAUD_C[z] elseif BAUD_B[z] then mode, baud = "B", BAUD_B[z] end
      tree:add(f.mode, mode):set_generated()
      tree:add(f.baud, baud):set_generated()
      local ident_start = 5
      if line:sub(6, 6) == "\\" and #line >= 7 then ident_start = 7 end
      tree:add(f.ident, buf(ident_start, #line - ident_start))
    end
    info = "Identification " .. line
  elseif first == 0x06 and n >= 4 then
    tree:add(f.kind, "option select")
    tree:add(f.opt_v, buf(1, 1))
    tree:add(f.opt_z, buf(2, 1))
    local y = buf(3, 1):string()
    tree:add(f.opt_y, buf(3, 1)):append_text(" (" .. (Y_MEANING[y] or "?") .. ")")
    info = "Option select V=" .. buf(1, 1):string() .. " Z=" .. buf(2, 1):string() .. " Y=" .. y
  elseif first == 0x06 then
    tree:add(f.kind, "ACK")
    info = "ACK"
  elseif first == 0x15 then
    tree:add(f.kind, "NAK")
    info = "NAK"
  elseif (first == 0x02 or first == 0x01) and n >= 3 then
    local last = n - 1
    local closer = bytes:get_index(last - 1)
    local verdict
    if first == 0x01 then
      local name = buf(1, 2):string()
      tree:add(f.kind, "command")
      tree:add(f.command, buf(1, 2))
      local stx
      for i = 3, last - 1 do if bytes:get_index(i) == 0x02 then stx = i break end end
      if stx and last - 2 >= stx + 1 then tree:add(f.block, buf(stx + 1, last - 2 - stx)) end
      verdict = add_bcc(tree, pinfo, buf, bytes, last)
      info = "Command " .. name .. (stx and (" " .. buf(stx + 1, math.max(0, last - 2 - stx)):string()) or "")
    else
      local partial = closer == 0x04
      tree:add(f.kind, partial and "partial block" or "data")
      if last - 2 >= 1 then
        local block = tree:add(f.block, buf(1, last - 2))
        add_datasets(block, buf, 1, last - 2)
      end
      verdict = add_bcc(tree, pinfo, buf, bytes, last)
      info = (partial and "Partial block" or "Data message") .. string.format(" (%d bytes)", n)
    end
    info = info .. ", " .. verdict
  elseif first >= 0x20 and first < 0x7f then
    tree:add(f.kind, "plain data block")
    add_datasets(tree, buf, 0, n - 1)
    info = string.format("Plain data block (%d bytes)", n)
  else
    tree:add(f.kind, "noise")
    tree:add_proto_expert_info(e_noise)
    info = string.format("Noise (%d bytes)", n)
  end
  pinfo.cols.info = info
  return n
end

DissectorTable.get("wtap_encap"):add(wtap_encaps.USER0, p)
