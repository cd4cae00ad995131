"""Writes the CSV fixtures of the nomination tests, in the encodings the offices' files really have.

Run `python tests/data/nomination/generate.py` after changing a fixture; the files are committed.
"""

from __future__ import annotations

import codecs
from pathlib import Path

HERE = Path(__file__).parent


def write(name: str, lines: list[str], encoding: str, *, bom: bool = False) -> None:
    raw = ("\r\n".join(lines) + "\r\n").encode(encoding)
    (HERE / name).write_bytes(codecs.BOM_UTF8 + raw if bom else raw)


# The HR system's Shift_JIS export: Japanese headers, full-width digits in some codes.
write(
    "departments_2024_sjis.csv",
    [
        "所属コード,所属名,部局,有効",
        "０１０１,総務部総務課,総務部,1",
        "０１０２,総務部人事課,総務部,1",
        "0201,企画政策部デジタル戦略課,企画政策部,○",
        "0301,健康福祉部高齢福祉保険課,健康福祉部,1",
        "0401,県土整備部道路課,県土整備部,1",
        "9901,旧農林水産部農林水産政策課,農林水産部,×",
    ],
    "cp932",
)
write(
    "staff_2024_sjis.csv",
    [
        "職員番号,氏名,所属コード,管理職,備考",
        "００１００１,青森　太郎,０１０１,0,",
        "001002,弘前　花子,0101,1,課長",
        "001003,八戸　次郎,0102,0,",
        "001004,十和田　三郎,0201,0,",
        "001005,三沢　四郎,0201,はい,",
        "001006,むつ　五月,0301,0,",
        "001007,五所川原　六美,0401,0,",
        "001008,黒石　七海,9901,0,",
    ],
    "cp932",
)
# English headers, UTF-8 with a BOM (Excel's "CSV UTF-8").
write(
    "departments_2024_utf8_bom.csv",
    [
        "department_code,name,bureau,active",
        "0101,総務部総務課,総務部,true",
        "0102,総務部人事課,総務部,true",
        "0201,企画政策部デジタル戦略課,企画政策部,true",
    ],
    "utf-8",
    bom=True,
)
# Every kind of bad row a roster can have; the expected code of each line is in the tests.
write(
    "staff_2024_bad_rows.csv",
    [
        "職員番号,氏名,所属コード,管理職",
        "001001,青森　太郎,0101,0",
        ",名無し,0101,0",
        "001002,弘前　花子,0101,たぶん",
        "001003,八戸　次郎,7777,0",
        "001001,青森　太郎（重複）,0101,0",
        "00 10#04,十和田　三郎,0101,0",
        "001005,三沢　四郎,01/01,0",
        "001006,むつ　五月,0101,0,余計な列",
        "001007,,0101,0",
    ],
    "utf-8",
)
write(
    "departments_2024_bad_rows.csv",
    [
        "所属コード,所属名,部局,有効",
        "0101,総務部総務課,総務部,1",
        "0101,総務部総務課（重複）,総務部,1",
        "0102,総務部人事課,総務部,どちらでも",
        "0103,,総務部,1",
        "01★03,謎の課,総務部,1",
    ],
    "utf-8",
)
write("staff_2024_missing_column.csv", ["職員番号,所属コード", "001001,0101"], "utf-8")
# A department's nomination sheet (推薦・自薦一覧), Shift_JIS.
write(
    "nominations_2024_sjis.csv",
    [
        "職員番号,氏名,枠,所属コード",
        "001001,青森　太郎,推薦,0101",
        "001002,弘前　花子,推薦,0101",
        "001003,八戸　次郎,推薦,0101",
        "001002,弘前　花子,自薦,",
        "001001,青森　太郎,自薦,",
        "999999,不明,自薦,",
        "001004,十和田　三郎,どれか,",
        "001008,黒石　七海,自薦,",
    ],
    "cp932",
)
