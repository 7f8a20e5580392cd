// The seed's JavaScript example (get_rt_ticker / Qot_GetTicker), with the official npm
// `futu-api` SDK, against OpenD's WebSocket gateway (here `aiofutu sim --websocket-port`):
// Init, subscribe TICKER with push, GetTicker with a count, then 3011 pushes.
//
//   node seed_ticker.mjs --port 33333 [--code HK.00700] [--count 3] [--pushes 1] [--key KEY]
//                        [--login-timeout 20] [--timeout 15] [--verbose 1]
//
// Each event is one line on stdout: "SEED " and a JSON object (int64 fields as exact decimal
// strings). The SDK's own console.debug lines (a login line, a dump of the CloseEvent) are
// silenced unless --verbose 1.
// Exit codes: 0 done, 2 login refused or not answered in time, 3 a request failed, 4 timeout.
import WebSocketImpl from "ws";
import ftWebsocket from "futu-api";
import protoRoot from "futu-api/proto.js";

// The SDK uses the global WebSocket, which Node 20 has only with --experimental-websocket.
if (typeof globalThis.WebSocket === "undefined") {
  globalThis.WebSocket = WebSocketImpl;
}

const RetType = protoRoot.lookupEnum("Common.RetType").values;
const SubType = protoRoot.lookupEnum("Qot_Common.SubType").values;
const QotMarket = protoRoot.lookupEnum("Qot_Common.QotMarket").values;
const MARKETS = {
  HK: QotMarket.QotMarket_HK_Security,
  US: QotMarket.QotMarket_US_Security,
  SH: QotMarket.QotMarket_CNSH_Security,
  SZ: QotMarket.QotMarket_CNSZ_Security,
};

function parseArgs(argv) {
  const opts = {
    port: 33333, code: "HK.00700", count: 3, pushes: 1, key: "",
    loginTimeout: 20, timeout: 15, verbose: false,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${name} needs a value`);
    switch (name) {
      case "--port": opts.port = Number(value); break;
      case "--code": opts.code = value; break;
      case "--count": opts.count = Number(value); break;
      case "--pushes": opts.pushes = Number(value); break;
      case "--key": opts.key = value; break;
      case "--login-timeout": opts.loginTimeout = Number(value); break;
      case "--timeout": opts.timeout = Number(value); break;
      case "--verbose": opts.verbose = value !== "0"; break;
      default: throw new Error(`unknown option ${name}`);
    }
  }
  return opts;
}

// JSON with every Long (int64/uint64 decoded by protobufjs + long) as its exact decimal string.
function toJson(value) {
  const plain = value && typeof value.toJSON === "function" ? value.toJSON() : value;
  return JSON.stringify(plain, (_, v) =>
    v && typeof v === "object" && typeof v.low === "number" && typeof v.high === "number"
      ? v.toString()
      : v,
  );
}

function emit(event, fields = {}) {
  process.stdout.write(`SEED ${toJson({ event, ...fields })}\n`);
}

const opts = parseArgs(process.argv.slice(2));
if (!opts.verbose) console.debug = () => {};
const [marketName, symbol] = opts.code.split(".");
const security = { market: MARKETS[marketName], code: symbol };
if (security.market === undefined || !symbol) throw new Error(`bad code ${opts.code}`);

const websocket = new ftWebsocket();
let tickerReply = null;
let pushes = 0;
let finished = false;

function finish(code) {
  if (finished) return;
  finished = true;
  emit("done", { exit: code });
  // stop() only unregisters the push callback; closing the inner socket ends the connection.
  websocket.stop();
  if (websocket.websock) websocket.websock.close();
  setTimeout(() => process.exit(code), 50);
}

function maybeDone() {
  if (tickerReply !== null && pushes >= opts.pushes) finish(0);
}

const guard = setTimeout(() => {
  emit("timeout", { pushes, ticker: tickerReply !== null });
  finish(4);
}, opts.timeout * 1000);
guard.unref();

const loginGuard = setTimeout(() => {
  emit("login_timeout", { seconds: opts.loginTimeout });
  finish(2);
}, opts.loginTimeout * 1000);

websocket.onPush = (cmd, msg) => {
  emit("push", { cmd, retType: msg.retType, s2c: msg.s2c });
  pushes += 1;
  maybeDone();
};

websocket.onlogin = async (ok, info) => {
  clearTimeout(loginGuard);
  if (!ok) {
    emit("login", { ok: false, info: String(info) });
    finish(2);
    return;
  }
  emit("login", { ok: true, connID: websocket.getConnID() });
  try {
    const sub = await websocket.Sub({
      c2s: {
        securityList: [security],
        subTypeList: [SubType.SubType_Ticker],
        isSubOrUnSub: true,
        isRegOrUnRegPush: true,
      },
    });
    emit("sub", { retType: sub.retType, retMsg: sub.retMsg ?? "" });
    const res = await websocket.GetTicker({ c2s: { security, maxRetNum: opts.count } });
    const { errCode, retMsg, retType, s2c } = res;
    tickerReply = s2c;
    emit("ticker", {
      errCode: errCode ?? 0,
      retMsg: retMsg ?? "",
      retType,
      ok: retType === RetType.RetType_Succeed,
      s2c,
    });
    maybeDone();
  } catch (error) {
    emit("error", { error: error && error.retMsg !== undefined ? error : String(error) });
    finish(3);
  }
};

websocket.start("127.0.0.1", opts.port, false, opts.key);
