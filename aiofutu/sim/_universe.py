"""The simulator's security list: real codes with their names, a reference price and board lot.

OpenD refuses a security it does not know; so does the simulator, and this is what it knows by
default: a few dozen of the most traded names per market (HK, US, SH, SZ), a handful for the
other markets, and the main indices. Prices are only where each random walk starts (it stays
within half and twice that); lots are the exchanges' board lots (US and A-share lots are the
simulator's round-lot size, 100; STAR-market shares trade in 200s). Add more with
``SimConfig(securities=...)`` or the testing plugin's ``opend_securities`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple, TypeAlias

from ..codes import parse_code

__all__ = ("DEFAULT_UNIVERSE", "Listing", "SecuritiesSpec", "listings")


class Listing(NamedTuple):
    """What the simulator knows of one security. ``None`` fields are drawn from the seed."""

    name: str | None = None
    #: Reference price in the currency unit: the random walk starts here.
    price: float | None = None
    #: Board lot (shares per lot); odd-lot trades are below it.
    lot: int | None = None


#: What ``SimConfig(securities=...)`` takes: codes, or a mapping of code to a name or a Listing.
SecuritiesSpec: TypeAlias = Mapping[str, str | Listing | None] | Iterable[str | tuple[str, Listing]]


def _table(market: str, rows: str) -> dict[str, Listing]:
    """``"CODE|name|price|lot"`` lines to listings of ``market``."""
    table: dict[str, Listing] = {}
    for row in rows.strip().splitlines():
        code, name, price, lot = (part.strip() for part in row.split("|"))
        table[f"{market}.{code}"] = Listing(name, float(price), int(lot))
    return table


_HK = """
00700 | Tencent                     | 480    | 100
09988 | Alibaba                     | 85     | 100
00005 | HSBC Holdings               | 70     | 400
00001 | CK Hutchison                | 42     | 500
00002 | CLP Holdings                | 65     | 500
00003 | HK & China Gas              | 6.2    | 1000
00011 | Hang Seng Bank              | 100    | 100
00016 | Sun Hung Kai Properties     | 80     | 500
00027 | Galaxy Entertainment        | 35     | 1000
00066 | MTR Corporation             | 27     | 500
00175 | Geely Automobile            | 15     | 1000
00267 | CITIC                       | 9      | 1000
00288 | WH Group                    | 6      | 500
00386 | Sinopec Corp                | 4.5    | 2000
00388 | HKEX                        | 330    | 100
00669 | Techtronic Industries       | 95     | 500
00762 | China Unicom                | 8      | 2000
00823 | Link REIT                   | 36     | 100
00857 | PetroChina                  | 6.5    | 2000
00883 | CNOOC                       | 19     | 1000
00939 | China Construction Bank     | 6      | 1000
00941 | China Mobile                | 80     | 500
00968 | Xinyi Solar                 | 3.5    | 2000
01024 | Kuaishou                    | 50     | 100
01038 | CK Infrastructure           | 50     | 500
01093 | CSPC Pharmaceutical         | 6      | 2000
01109 | China Resources Land        | 26     | 500
01177 | Sino Biopharmaceutical      | 3.5    | 1000
01211 | BYD Company                 | 300    | 500
01234 | China Lilang                | 4      | 2000
01299 | AIA Group                   | 60     | 200
01398 | ICBC                        | 5      | 1000
01810 | Xiaomi                      | 40     | 200
01876 | Budweiser APAC              | 9      | 100
01928 | Sands China                 | 18     | 400
02020 | ANTA Sports                 | 85     | 200
02318 | Ping An Insurance           | 45     | 500
02388 | BOC Hong Kong               | 25     | 500
02628 | China Life Insurance        | 15     | 1000
02800 | Tracker Fund of Hong Kong   | 22     | 500
03033 | CSOP Hang Seng TECH ETF     | 4.5    | 200
03690 | Meituan                     | 120    | 100
03988 | Bank of China               | 4      | 1000
09618 | JD.com                      | 130    | 50
09888 | Baidu                       | 85     | 50
09999 | NetEase                     | 150    | 100
800000| Hang Seng Index             | 20000  | 1
800700| Hang Seng TECH Index        | 4500   | 1
"""

_US = """
AAPL  | Apple Inc.                  | 190    | 100
MSFT  | Microsoft                   | 420    | 100
NVDA  | NVIDIA                      | 120    | 100
AMZN  | Amazon.com                  | 180    | 100
GOOGL | Alphabet Class A            | 170    | 100
GOOG  | Alphabet Class C            | 172    | 100
META  | Meta Platforms              | 500    | 100
TSLA  | Tesla                       | 250    | 100
BRK.B | Berkshire Hathaway Class B  | 420    | 100
JPM   | JPMorgan Chase              | 200    | 100
V     | Visa                        | 280    | 100
MA    | Mastercard                  | 460    | 100
UNH   | UnitedHealth Group          | 500    | 100
XOM   | Exxon Mobil                 | 115    | 100
JNJ   | Johnson & Johnson           | 155    | 100
WMT   | Walmart                     | 70     | 100
PG    | Procter & Gamble            | 165    | 100
HD    | Home Depot                  | 350    | 100
KO    | Coca-Cola                   | 62     | 100
PEP   | PepsiCo                     | 170    | 100
COST  | Costco Wholesale            | 850    | 100
NFLX  | Netflix                     | 650    | 100
AMD   | Advanced Micro Devices      | 160    | 100
INTC  | Intel                       | 30     | 100
ORCL  | Oracle                      | 140    | 100
CRM   | Salesforce                  | 260    | 100
ADBE  | Adobe                       | 520    | 100
AVGO  | Broadcom                    | 160    | 100
QCOM  | Qualcomm                    | 170    | 100
DIS   | Walt Disney                 | 100    | 100
BA    | Boeing                      | 180    | 100
NKE   | Nike                        | 85     | 100
PYPL  | PayPal                      | 65     | 100
UBER  | Uber Technologies           | 70     | 100
BABA  | Alibaba Group ADR           | 85     | 100
PDD   | PDD Holdings                | 130    | 100
JD    | JD.com ADR                  | 30     | 100
BIDU  | Baidu ADR                   | 95     | 100
NIO   | NIO                         | 5      | 100
FUTU  | Futu Holdings               | 65     | 100
SPY   | SPDR S&P 500 ETF            | 550    | 100
QQQ   | Invesco QQQ Trust           | 480    | 100
.DJI  | Dow Jones Industrial Average| 40000  | 1
.IXIC | NASDAQ Composite            | 17000  | 1
.SPX  | S&P 500 Index               | 5500   | 1
"""

_SH = """
600519 | Kweichow Moutai            | 1500   | 100
600000 | SPD Bank                   | 10     | 100
600036 | China Merchants Bank       | 35     | 100
601318 | Ping An Insurance          | 45     | 100
601398 | ICBC                       | 6      | 100
601288 | Agricultural Bank of China | 4.5    | 100
601988 | Bank of China              | 4.5    | 100
601857 | PetroChina                 | 9      | 100
600028 | Sinopec Corp               | 6      | 100
600900 | China Yangtze Power        | 28     | 100
600276 | Jiangsu Hengrui Medicine   | 45     | 100
600887 | Inner Mongolia Yili        | 28     | 100
601012 | LONGi Green Energy         | 20     | 100
600030 | CITIC Securities           | 22     | 100
601166 | Industrial Bank            | 18     | 100
600309 | Wanhua Chemical            | 80     | 100
601888 | China Tourism Group Duty Free | 70  | 100
600048 | Poly Developments          | 9      | 100
601628 | China Life Insurance       | 30     | 100
600050 | China Unicom               | 5      | 100
601899 | Zijin Mining               | 17     | 100
600104 | SAIC Motor                 | 14     | 100
688981 | SMIC                       | 50     | 200
688111 | Kingsoft Office            | 250    | 200
000001 | SSE Composite Index        | 3000   | 1
000300 | CSI 300 Index              | 3500   | 1
"""

_SZ = """
000001 | Ping An Bank               | 11.5   | 100
000002 | China Vanke                | 8      | 100
000333 | Midea Group                | 65     | 100
000651 | Gree Electric              | 40     | 100
000858 | Wuliangye Yibin            | 140    | 100
002594 | BYD Company                | 250    | 100
300750 | CATL                       | 200    | 100
002415 | Hikvision                  | 30     | 100
000725 | BOE Technology             | 4      | 100
300059 | East Money Information     | 14     | 100
002475 | Luxshare Precision         | 30     | 100
000568 | Luzhou Laojiao             | 160    | 100
300760 | Mindray Medical            | 260    | 100
002714 | Muyuan Foods               | 40     | 100
000063 | ZTE                        | 30     | 100
300015 | Aier Eye Hospital          | 13     | 100
002304 | Jiangsu Yanghe Brewery     | 90     | 100
000100 | TCL Technology             | 4.5    | 100
300124 | Shenzhen Inovance          | 55     | 100
002352 | SF Holding                 | 40     | 100
399001 | SZSE Component Index       | 9500   | 1
399006 | ChiNext Index              | 1900   | 1
"""

_OTHER = {
    "SG": """
D05 | DBS Group                   | 35     | 100
O39 | OCBC Bank                   | 15     | 100
U11 | United Overseas Bank        | 30     | 100
Z74 | Singtel                     | 2.5    | 100
C6L | Singapore Airlines          | 6.5    | 100
""",
    "JP": """
7203 | Toyota Motor               | 3000   | 100
6758 | Sony Group                 | 3000   | 100
9984 | SoftBank Group             | 8000   | 100
""",
    "AU": """
BHP | BHP Group                   | 45     | 100
CBA | Commonwealth Bank           | 120    | 100
""",
    "CA": """
RY  | Royal Bank of Canada        | 140    | 100
TD  | Toronto-Dominion Bank       | 80     | 100
""",
    "MY": """
1155 | Malayan Banking            | 10     | 100
""",
    "HK_FUTURE": """
999010 | HSI Futures (main)       | 20000  | 1
""",
}

#: The securities every simulator knows (code -> :class:`Listing`), unless told otherwise.
DEFAULT_UNIVERSE: Mapping[str, Listing] = {
    **_table("HK", _HK),
    **_table("US", _US),
    **_table("SH", _SH),
    **_table("SZ", _SZ),
    **{
        code: listing
        for market, rows in _OTHER.items()
        for code, listing in _table(market, rows).items()
    },
}


def listings(spec: SecuritiesSpec) -> tuple[tuple[str, Listing], ...]:
    """``SimConfig.securities`` in its one stored form; raises ``ValueError`` on bad entries."""
    pairs: list[tuple[str, Listing]] = []
    items: Iterable[object] = spec.items() if isinstance(spec, Mapping) else spec
    if isinstance(spec, str):
        raise ValueError(f"securities must be codes or a mapping, not one string {spec!r}")
    for item in items:
        if isinstance(item, str):
            code, value = item, None
        elif isinstance(item, tuple) and len(item) == 2:
            code, value = item
        else:
            raise ValueError(f"securities: expected a code or (code, Listing), got {item!r}")
        parse_code(code)
        if value is None:
            listing = Listing()
        elif isinstance(value, str):
            listing = Listing(value)
        elif isinstance(value, Listing):
            listing = value
        else:
            raise ValueError(f"securities[{code!r}]: expected a name or a Listing, got {value!r}")
        if listing.price is not None and not listing.price > 0:
            raise ValueError(f"securities[{code!r}]: price must be > 0, got {listing.price!r}")
        if listing.lot is not None and listing.lot < 1:
            raise ValueError(f"securities[{code!r}]: lot must be >= 1, got {listing.lot!r}")
        pairs.append((code, listing))
    return tuple(pairs)
