// The official npm `futu-api` SDK reads the state kinds from OpenD's WebSocket gateway (here
// the simulator's): Init, Qot_Sub QUOTE + ORDER_BOOK + BROKER with push, the first pushes
// (3005, 3013, 3015), then GetBasicQot, GetOrderBook (10 levels) and GetBroker.
//
//   node state_kinds.mjs --port 33333 [--code HK.00700] [--timeout 15]
//
// Each event is one line on stdout: "STATE " and a JSON object (int64 fields as exact decimal
// strings). Exit codes: 0 done, 2 login refused, 3 a request failed, 4 timeout.
import WebSocketImpl from "ws";
import ftWebsocket from "futu-api";
import protoRoot from "futu-api/proto.js";

if (typeof globalThis.WebSocket === "undefined") {
  globalThis.WebSocket = WebSocketImpl;
}

const SubType = protoRoot.lookupEnum("Qot_Common.SubType").values;
const MARKETS = { HK: 1, US: 11 };

const opts = { port: 33333, code: "HK.00700", timeout: 15 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [name, value] = [argv[i], argv[i + 1]];
  if (name === "--port") opts.port = Number(value);
  else if (name === "--code") opts.code = value;
  else if (name === "--timeout") opts.timeout = Number(value);
  else throw new Error(`unknown option ${name}`);
}
console.debug = () => {};

function toJson(value) {
  const plain = value && typeof value.toJSON === "function" ? value.toJSON() : value;
  return JSON.stringify(plain, (_, v) =>
    v && typeof v === "object" && typeof v.low === "number" && typeof v.high === "number"
      ? v.toString()
      : v,
  );
}

function emit(event, fields = {}) {
  process.stdout.write(`STATE ${toJson({ event, ...fields })}\n`);
}

const [marketName, symbol] = opts.code.split(".");
const security = { market: MARKETS[marketName], code: symbol };
const websocket = new ftWebsocket();
const pushed = new Set();
let gotten = false;
let finished = false;

function finish(code) {
  if (finished) return;
  finished = true;
  emit("done", { exit: code });
  websocket.stop();
  if (websocket.websock) websocket.websock.close();
  setTimeout(() => process.exit(code), 50);
}

const guard = setTimeout(() => {
  emit("timeout", { pushed: [...pushed], gotten });
  finish(4);
}, opts.timeout * 1000);
guard.unref();

function maybeDone() {
  if (gotten && pushed.size >= 3) finish(0);
}

websocket.onPush = (cmd, msg) => {
  emit("push", { cmd, retType: msg.retType, s2c: msg.s2c });
  pushed.add(cmd);
  maybeDone();
};

websocket.onlogin = async (ok, info) => {
  if (!ok) {
    emit("login", { ok: false, info: String(info) });
    finish(2);
    return;
  }
  try {
    const sub = await websocket.Sub({
      c2s: {
        securityList: [security],
        subTypeList: [SubType.SubType_Basic, SubType.SubType_OrderBook, SubType.SubType_Broker],
        isSubOrUnSub: true,
        isRegOrUnRegPush: true,
      },
    });
    emit("sub", { retType: sub.retType });
    const quote = await websocket.GetBasicQot({ c2s: { securityList: [security] } });
    emit("quote", { retType: quote.retType, s2c: quote.s2c });
    const book = await websocket.GetOrderBook({ c2s: { security, num: 10 } });
    emit("book", { retType: book.retType, s2c: book.s2c });
    const broker = await websocket.GetBroker({ c2s: { security } });
    emit("broker", { retType: broker.retType, s2c: broker.s2c });
    gotten = true;
    maybeDone();
  } catch (error) {
    emit("error", { error: error && error.retMsg !== undefined ? error : String(error) });
    finish(3);
  }
};

websocket.start("127.0.0.1", opts.port, false, "");
