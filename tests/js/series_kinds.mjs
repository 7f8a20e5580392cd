// The official npm `futu-api` SDK reads the series kinds from OpenD's WebSocket gateway (here the
// simulator's): Init, Qot_Sub K_1M + K_DAY + RT with push for every code, then per code
// GetKL (3006) of both periods with a count, GetRT (3008) and one page of RequestHistoryKL
// (3103); then "ready", and every 3007/3009 push until each (code, kind) has had --pushes.
//
//   node series_kinds.mjs --port 33333 [--codes HK.00700,US.AAPL] [--count 5] [--pushes 4]
//                         [--begin 2024-01-02] [--end 2024-03-28] [--page 7] [--timeout 15]
//
// Each event is one line on stdout: "SERIES " and a JSON object (int64 fields as exact decimal
// strings). A push's key is "<code> <cmd>[ <klType>]". Exit codes: 0 done, 2 login refused,
// 3 a request failed, 4 timeout.
import WebSocketImpl from "ws";
import ftWebsocket from "futu-api";
import protoRoot from "futu-api/proto.js";

if (typeof globalThis.WebSocket === "undefined") {
  globalThis.WebSocket = WebSocketImpl;
}

const SubType = protoRoot.lookupEnum("Qot_Common.SubType").values;
const KLType = protoRoot.lookupEnum("Qot_Common.KLType").values;
const RehabType = protoRoot.lookupEnum("Qot_Common.RehabType").values;
const MARKETS = { HK: 1, US: 11 };
const NAMES = { 1: "HK", 11: "US" };

const opts = {
  port: 33333, codes: "HK.00700,US.AAPL", count: 5, pushes: 4,
  begin: "2024-01-02", end: "2024-03-28", page: 7, timeout: 15,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [name, value] = [argv[i], argv[i + 1]];
  if (value === undefined) throw new Error(`${name} needs a value`);
  const field = name.replace(/^--/, "");
  if (!(field in opts)) throw new Error(`unknown option ${name}`);
  opts[field] = typeof opts[field] === "number" ? Number(value) : value;
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
  process.stdout.write(`SERIES ${toJson({ event, ...fields })}\n`);
}

const codes = opts.codes.split(",");
const securities = codes.map((code) => {
  const [market, symbol] = code.split(".");
  if (MARKETS[market] === undefined || !symbol) throw new Error(`bad code ${code}`);
  return { market: MARKETS[market], code: symbol };
});
const PERIODS = { K_1M: KLType.KLType_1Min, K_DAY: KLType.KLType_Day };
const websocket = new ftWebsocket();
const pushed = new Map(); // key -> count
let ready = false;
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
  emit("timeout", { pushed: Object.fromEntries(pushed), ready });
  finish(4);
}, opts.timeout * 1000);
guard.unref();

function maybeDone() {
  const wanted = codes.length * (Object.keys(PERIODS).length + 1);
  const full = [...pushed.values()].filter((n) => n >= opts.pushes).length;
  if (ready && full >= wanted) finish(0);
}

function codeOf(security) {
  return `${NAMES[security.market]}.${security.code}`;
}

websocket.onPush = (cmd, msg) => {
  const s2c = msg.s2c;
  const key = `${codeOf(s2c.security)} ${cmd}${cmd === 3007 ? ` ${s2c.klType}` : ""}`;
  pushed.set(key, (pushed.get(key) || 0) + 1);
  emit("push", { key, cmd, retType: msg.retType, s2c });
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
        securityList: securities,
        subTypeList: [SubType.SubType_KL_1Min, SubType.SubType_KL_Day, SubType.SubType_RT],
        isSubOrUnSub: true,
        isRegOrUnRegPush: true,
        regPushRehabTypeList: [RehabType.RehabType_Forward],
      },
    });
    emit("sub", { retType: sub.retType });
    for (const security of securities) {
      const code = codeOf(security);
      for (const [period, klType] of Object.entries(PERIODS)) {
        const kl = await websocket.GetKL({
          c2s: { rehabType: RehabType.RehabType_Forward, klType, security, reqNum: opts.count },
        });
        emit("kl", { code, period, retType: kl.retType, s2c: kl.s2c });
      }
      const rt = await websocket.GetRT({ c2s: { security } });
      emit("rt", { code, retType: rt.retType, s2c: rt.s2c });
      const history = await websocket.RequestHistoryKL({
        c2s: {
          rehabType: RehabType.RehabType_Forward,
          klType: KLType.KLType_Day,
          security,
          beginTime: `${opts.begin} 00:00:00`,
          endTime: `${opts.end} 23:59:59`,
          maxAckKLNum: opts.page,
        },
      });
      emit("history", { code, retType: history.retType, s2c: history.s2c });
    }
    ready = true;
    emit("ready");
    maybeDone();
  } catch (error) {
    emit("error", { error: error && error.retMsg !== undefined ? error : String(error) });
    finish(3);
  }
};

websocket.start("127.0.0.1", opts.port, false, "");
