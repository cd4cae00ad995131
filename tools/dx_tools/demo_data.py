"""A realistic five-year history of the programme, generated deterministically from a seed (pure).

About 200 departments in a dozen bureaus (本庁 divisions and 出先機関 regional offices), several
thousand staff who move, retire and are hired between years, about 200 nominations a year with some
departments not nominating, volunteers who continue through stages 2–5, baseline completions, and a
few late and unmatched completions. The generator simulates the policy only to decide *who applies*;
every stage decision the dashboard shows is made by the services from the facts the loader posts.

`clip_to(plans, now)` keeps only what a real office could have recorded by `now`: no fiscal year that has
not begun, no completion, attendance or late report dated after `now` (sessions, curricula, rosters and
nominations of the current year stay: they are planned ahead).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dx_shared.calendar import JST, fiscal_year_of

FIRST_YEAR, LAST_YEAR = 2024, 2028

# Each 部局 with the 課 it could plausibly have (modelled on a Japanese prefecture's organisation chart);
# each demo bureau has 14 of them, drawn from the seed and listed in the chart's order. The first 課 of a
# bureau is its co-ordinating division and always present, as are 人事課, 財政課, 税務課 and 企画政策部's
# DX推進課 (renamed in FY2026).
BUREAUS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("10", "総務部", (
        "総務課", "人事課", "職員厚生課", "行政経営推進課", "法務文書課", "学事振興課", "市町村課",
        "情報システム課", "人財育成課", "県民情報課", "公文書管理課", "総務事務課", "秘書課", "給与課",
        "職員研修課", "総務調整課",
    )),
    ("11", "財務部", (
        "財務企画課", "財政課", "税務課", "課税指導課", "収税対策課", "管財課", "財産活用推進課", "契約検査課",
        "会計課", "物品調達課", "公有財産管理課", "資金管理課", "地方債管理課", "県有施設マネジメント課",
        "出納課", "予算調整課",
    )),
    ("12", "企画政策部", (
        "企画調整課", "DX推進課", "政策推進課", "総合計画課", "統計分析課", "デジタル基盤課", "人口減少対策課",
        "地方創生推進課", "未来戦略課", "政策調整課", "科学技術振興課", "広報広聴課", "データ利活用推進課",
        "官民連携推進課", "世界遺産推進課", "地域情報化推進課",
    )),
    ("13", "健康医療福祉部", (
        "健康医療福祉政策課", "医療薬務課", "医師確保対策課", "保健衛生課", "感染症対策課",
        "がん・生活習慣病対策課", "高齢福祉保険課", "障害福祉課", "生活福祉課", "国民健康保険課",
        "健康づくり推進課", "地域医療計画課", "介護保険課", "福祉人材確保課", "食の安全・安心推進課",
        "薬務衛生課",
    )),
    ("14", "こども家庭部", (
        "こども総合政策課", "こども未来課", "こども家庭支援課", "少子化対策課", "子育て支援課",
        "保育・幼児教育課", "こども若者政策課", "児童虐待防止対策課", "ひとり親家庭支援課", "母子保健課",
        "こども施設整備課", "家庭福祉課", "こども権利擁護課", "若者活躍推進課", "青少年健全育成課",
        "結婚・出産支援課",
    )),
    ("15", "環境エネルギー部", (
        "環境政策課", "自然保護課", "環境保全課", "循環型社会推進課", "エネルギー開発振興課",
        "原子力立地対策課", "再生可能エネルギー推進課", "脱炭素推進課", "廃棄物対策課", "大気水質保全課",
        "環境影響評価課", "温暖化対策課", "県境再生対策課", "自然環境課", "水環境課", "環境教育推進課",
    )),
    ("16", "経済産業部", (
        "商工政策課", "産業立地推進課", "地域産業課", "新産業創造課", "労働政策課", "中小企業振興課",
        "商業振興課", "創業支援課", "産業技術課", "工業振興課", "金融支援課", "販路開拓課", "人材確保推進課",
        "ものづくり産業課", "経営支援課", "職業能力開発課",
    )),
    ("17", "観光国際戦略局", (
        "観光企画課", "誘客交流課", "国際経済課", "国際交流課", "観光プロモーション課", "インバウンド推進課",
        "観光資源活用課", "国際観光課", "海外戦略課", "県産品販売促進課", "観光地域づくり課",
        "航空・港湾誘客課", "国内誘客課", "物産振興課", "観光人材育成課", "ブランド戦略課",
    )),
    ("18", "農林水産部", (
        "農林水産政策課", "団体経営改善課", "構造政策課", "農産園芸課", "りんご果樹課", "畜産課", "林政課",
        "森林整備課", "水産振興課", "漁港漁場整備課", "農村整備課", "農地調整課", "総合販売戦略課",
        "農業経営支援課", "食産業振興課", "スマート農業推進課",
    )),
    ("19", "県土整備部", (
        "監理課", "整備企画課", "技術管理課", "道路課", "道路保全課", "河川砂防課", "港湾空港課",
        "都市計画課", "建築住宅課", "下水道課", "用地課", "建設業振興課", "営繕課", "公園緑地課",
        "交通基盤整備課", "建築指導課",
    )),
    ("20", "危機管理局", (
        "防災危機管理課", "原子力安全対策課", "消防保安課", "危機管理企画課", "防災通信課", "災害対策課",
        "国民保護課", "地域防災支援課", "消防防災航空課", "原子力防災課", "防災施設管理課", "保安指導課",
        "防災人材育成課", "災害復旧支援課", "防災教育推進課", "危機管理調整課",
    )),
    ("21", "交通・地域社会部", (
        "交通政策課", "地域交通課", "新幹線・並行在来線対策課", "県民生活文化課", "文化・スポーツ振興課",
        "男女共同参画課", "地域活力振興課", "移住・交流推進課", "消費生活課", "交通安全対策課",
        "NPO・協働推進課", "スポーツ振興課", "文化振興課", "地域づくり推進課", "多文化共生推進課",
        "空港・港湾利用促進課",
    )),
)
DIVISIONS_PER_BUREAU = 14
ALWAYS_PRESENT = frozenset({"人事課", "財政課", "税務課", "DX推進課"})
REGIONS = ("東青", "中南", "三八", "西北", "上北", "下北")
# 出先機関 of each region and the 部局 each reports to.
REGIONAL_OFFICES: tuple[tuple[str, str], ...] = (
    ("地域県民局 地域連携部", "企画政策部"),
    ("地域県民局 地域健康福祉部", "健康医療福祉部"),
    ("地域県民局 地域農林水産部", "農林水産部"),
    ("地域県民局 地域整備部", "県土整備部"),
    ("県税事務所", "財務部"),
)
FAMILY_NAMES = (
    "佐藤",
    "木村",
    "工藤",
    "高橋",
    "成田",
    "佐々木",
    "斎藤",
    "三上",
    "田中",
    "中村",
    "小山内",
    "鈴木",
    "山本",
    "葛西",
    "對馬",
    "吉田",
    "今",
    "福士",
    "須藤",
    "蝦名",
    "小笠原",
    "鳴海",
    "齋藤",
    "相馬",
    "千葉",
    "三浦",
    "竹内",
    "清水",
    "奈良",
    "白戸",
)
GIVEN_NAMES = (
    "翔太",
    "美咲",
    "大輔",
    "陽菜",
    "健一",
    "由美",
    "拓也",
    "彩",
    "直樹",
    "恵",
    "悠斗",
    "さくら",
    "和也",
    "真由美",
    "亮",
    "千尋",
    "誠",
    "里奈",
    "剛",
    "舞",
    "光",
    "葵",
    "隆",
    "結衣",
)


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    bureau: str
    active: bool = True


@dataclass(frozen=True)
class Staff:
    staff_id: str
    name: str
    department_code: str
    is_manager: bool


@dataclass(frozen=True)
class Session:
    session_id: str
    fiscal_year: int
    method: str  # e_learning | classroom | hands_on
    audience: str  # promoter | all_staff | managers
    stage: int | None
    title: str
    starts_at: datetime
    capacity: int | None
    move_on: str


@dataclass(frozen=True)
class Nomination:
    staff_id: str
    department_code: str
    slot: str  # recommended | self


@dataclass(frozen=True)
class Completion:
    session_id: str
    staff_id: str
    occurred_at: datetime
    method: str
    passed: bool = True


@dataclass
class YearPlan:
    fiscal_year: int
    departments: list[Department]
    staff: list[Staff]
    sessions: list[Session]
    curricula: dict[int, list[str]]
    nominations: list[Nomination]
    promoter_completions: list[Completion]
    baseline_completions: list[Completion]
    late_for_previous_year: list[Completion] = field(default_factory=list)
    unmatched: list[dict[str, str]] = field(default_factory=list)


def _moment(rng: random.Random, fiscal_year: int, month_from: int = 5, month_to: int = 2) -> datetime:
    start = datetime(fiscal_year, month_from, 1, 9, 0, tzinfo=JST)
    end_year = fiscal_year + 1 if month_to < 4 else fiscal_year
    end = datetime(end_year, month_to, 28, 17, 0, tzinfo=JST)
    return start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))


def _departments(rng: random.Random) -> list[Department]:
    departments: list[Department] = []
    for bureau_code, bureau, divisions in BUREAUS:
        for index, division in enumerate(_divisions_of(rng, divisions), start=1):
            departments.append(Department(f"{bureau_code}{index:02d}00", f"{bureau} {division}", bureau))
    for region_index, region in enumerate(REGIONS, start=1):
        for office_index, (office, bureau) in enumerate(REGIONAL_OFFICES, start=1):
            code = f"8{region_index}{office_index:02d}00"
            departments.append(Department(code, f"{region}{office}", bureau))
    return departments


def _divisions_of(rng: random.Random, divisions: tuple[str, ...]) -> list[str]:
    """The bureau's co-ordinating 課 and any always-present one, then others drawn from the seed, in chart order."""
    fixed = [division for index, division in enumerate(divisions) if index == 0 or division in ALWAYS_PRESENT]
    others = [division for division in divisions if division not in fixed]
    chosen = set(fixed) | set(rng.sample(others, DIVISIONS_PER_BUREAU - len(fixed)))
    return [division for division in divisions if division in chosen]


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY_NAMES)} {rng.choice(GIVEN_NAMES)}"


def _sessions(fiscal_year: int) -> tuple[list[Session], dict[int, list[str]]]:
    reiwa = fiscal_year - 2018
    sessions: list[Session] = []
    curricula: dict[int, list[str]] = {}
    stage_titles = {1: "業務効率化", 2: "業務改善", 3: "業務改革", 4: "データ利活用", 5: "AI等活用"}
    for stage, theme in stage_titles.items():
        ids = []
        elearning = Session(
            f"R{reiwa}-S{stage}-EL",
            fiscal_year,
            "e_learning",
            "promoter",
            stage,
            f"ステージ{stage} {theme} e-ラーニング",
            datetime(fiscal_year, 5, 15, 9, tzinfo=JST),
            None,
            "completed" if stage == 1 else "completed_and_passed",
        )
        hands_on_method = "classroom" if stage == 1 else "hands_on"
        workshop = Session(
            f"R{reiwa}-S{stage}-{'CL' if stage == 1 else 'HO'}",
            fiscal_year,
            hands_on_method,
            "promoter",
            stage,
            f"ステージ{stage} {theme} {'集合研修' if stage == 1 else 'ハンズオン研修'}",
            datetime(fiscal_year, 9, 10, 13, tzinfo=JST),
            400 if stage == 1 else 120,
            "completed",
        )
        sessions += [elearning, workshop]
        ids += [elearning.session_id, workshop.session_id]
        if stage == 1:
            basics = Session(
                f"R{reiwa}-S1-EL2",
                fiscal_year,
                "e_learning",
                "promoter",
                1,
                "ステージ1 デジタルツール活用 e-ラーニング",
                datetime(fiscal_year, 6, 1, 9, tzinfo=JST),
                None,
                "completed",
            )
            sessions.append(basics)
            ids.append(basics.session_id)
        curricula[stage] = ids
    sessions.append(
        Session(
            f"R{reiwa}-BASE-EL",
            fiscal_year,
            "e_learning",
            "all_staff",
            None,
            "全職員 DX基礎 e-ラーニング",
            datetime(fiscal_year, 4, 15, 9, tzinfo=JST),
            None,
            "completed",
        )
    )
    sessions.append(
        Session(
            f"R{reiwa}-MGT-CL",
            fiscal_year,
            "classroom",
            "managers",
            None,
            "管理職 DXマネジメント研修",
            datetime(fiscal_year, 7, 20, 13, tzinfo=JST),
            600,
            "completed",
        )
    )
    return sessions, curricula


def generate(seed: int = 2024, staff_per_department: int = 15) -> list[YearPlan]:
    rng = random.Random(seed)
    departments = _departments(rng)
    next_id = 1000001
    staff: dict[str, Staff] = {}
    for department in departments:
        for _ in range(staff_per_department + rng.randrange(-5, 6)):
            staff[str(next_id)] = Staff(str(next_id), _name(rng), department.code, rng.random() < 0.1)
            next_id += 1
    ever_nominated: set[str] = set()
    last_stage: dict[str, int] = {}
    completed_last: dict[str, bool] = {}
    plans: list[YearPlan] = []
    previous_trainees: dict[str, int] = {}

    for fiscal_year in range(FIRST_YEAR, LAST_YEAR + 1):
        if fiscal_year == 2026:
            # A reorganisation: 企画政策部's DX推進課 becomes デジタル戦略課, and the 下北 tax office is merged
            # into the neighbouring 上北 one (its staff move there; the old code stays, inactive).
            departments = [replace(dept, name=dept.name.replace("DX推進課", "デジタル戦略課")) for dept in departments]
            retired = next(dept for dept in departments if dept.name == "下北県税事務所")
            receiver = next(dept for dept in departments if dept.name == "上北県税事務所")
            departments = [replace(dept, active=False) if dept.code == retired.code else dept for dept in departments]
            for person in list(staff.values()):
                if person.department_code == retired.code:
                    staff[person.staff_id] = replace(person, department_code=receiver.code)
        if fiscal_year > FIRST_YEAR:
            for person in list(staff.values()):
                roll = rng.random()
                if roll < 0.03:
                    del staff[person.staff_id]
                elif roll < 0.12:
                    new_home = rng.choice([d for d in departments if d.active])
                    staff[person.staff_id] = replace(person, department_code=new_home.code)
            for _ in range(int(len(staff) * 0.035)):
                home = rng.choice([d for d in departments if d.active])
                staff[str(next_id)] = Staff(str(next_id), _name(rng), home.code, False)
                next_id += 1
        roster = sorted(staff.values(), key=lambda person: person.staff_id)
        by_department: dict[str, list[Staff]] = {}
        for person in roster:
            by_department.setdefault(person.department_code, []).append(person)
        sessions, curricula = _sessions(fiscal_year)

        nominations: list[Nomination] = []
        chosen: set[str] = set()
        missing_rate = 0.12 if fiscal_year == LAST_YEAR else 0.06
        for department in departments:
            if not department.active or rng.random() < missing_rate:
                continue
            candidates = [p for p in by_department.get(department.code, []) if p.staff_id not in ever_nominated]
            if candidates:
                person = rng.choice(candidates)
                nominations.append(Nomination(person.staff_id, department.code, "recommended"))
                chosen.add(person.staff_id)
        for staff_id, stage in previous_trainees.items():
            if staff_id in staff and staff_id not in chosen:
                continues = 0.45 if completed_last.get(staff_id) else 0.2
                if stage == 5 and completed_last.get(staff_id):
                    continues = 0.05
                if rng.random() < continues:
                    person = staff[staff_id]
                    nominations.append(Nomination(staff_id, person.department_code, "self"))
                    chosen.add(staff_id)
        volunteers = [p for p in roster if p.staff_id not in ever_nominated and p.staff_id not in chosen]
        for person in rng.sample(volunteers, min(len(volunteers), 12 + rng.randrange(8))):
            nominations.append(Nomination(person.staff_id, person.department_code, "self"))
            chosen.add(person.staff_id)

        promoter_completions: list[Completion] = []
        trainees: dict[str, int] = {}
        completed_now: dict[str, bool] = {}
        for nomination in nominations:
            staff_id = nomination.staff_id
            if staff_id not in last_stage:
                stage = 1
            elif completed_last.get(staff_id):
                stage = min(last_stage[staff_id] + 1, 5)
            else:
                stage = last_stage[staff_id]
            trainees[staff_id] = stage
            diligence = 0.93 if fiscal_year < LAST_YEAR else 0.6
            done_all = True
            for session_id in curricula[stage]:
                session = next(s for s in sessions if s.session_id == session_id)
                if rng.random() < diligence:
                    passed = rng.random() < 0.95
                    promoter_completions.append(
                        Completion(session_id, staff_id, _moment(rng, fiscal_year, 5, 2), session.method, passed)
                    )
                    done_all = done_all and (passed or session.move_on == "completed")
                else:
                    done_all = False
            completed_now[staff_id] = done_all
        ever_nominated |= chosen

        baseline: list[Completion] = []
        rate = {2024: 0.62, 2025: 0.74, 2026: 0.83, 2027: 0.88, 2028: 0.55}[fiscal_year]
        base_id, mgt_id = f"R{fiscal_year - 2018}-BASE-EL", f"R{fiscal_year - 2018}-MGT-CL"
        for person in roster:
            if rng.random() < rate:
                baseline.append(Completion(base_id, person.staff_id, _moment(rng, fiscal_year, 4, 3), "e_learning"))
            if person.is_manager and rng.random() < rate + 0.05:
                baseline.append(Completion(mgt_id, person.staff_id, _moment(rng, fiscal_year, 7, 12), "classroom"))

        plan = YearPlan(
            fiscal_year, list(departments), roster, sessions, curricula, nominations, promoter_completions, baseline
        )
        if plans:
            previous = plans[-1]
            # Completions of last year that reach us only after that year was closed (P6).
            done = {(c.session_id, c.staff_id) for c in previous.promoter_completions}
            missed = sorted(
                (session_id, staff_id)
                for staff_id, stage in previous_trainees.items()
                for session_id in previous.curricula[stage]
                if (session_id, staff_id) not in done and session_id.endswith("-EL")
            )
            plan.late_for_previous_year = [
                Completion(
                    session_id, staff_id, datetime(previous.fiscal_year + 1, 3, 25, 10, tzinfo=JST), "e_learning"
                )
                for session_id, staff_id in rng.sample(missed, min(4, len(missed)))
            ]
        plan.unmatched = [
            {"activity": f"https://elearning.example/activities/unknown-{fiscal_year}", "staff_id": roster[0].staff_id},
            {"activity": f"R{fiscal_year - 2018}-S1-EL", "staff_id": "9999999"},
        ]
        plans.append(plan)
        for staff_id, stage in trainees.items():
            last_stage[staff_id] = stage
            completed_last[staff_id] = completed_now[staff_id]
        previous_trainees = trainees
    return plans


def clip_to(plans: list[YearPlan], now: datetime) -> list[YearPlan]:
    """The part of the simulated history that has happened by `now` (deterministic: same plans, same now)."""
    current = fiscal_year_of(now)
    clipped: list[YearPlan] = []
    for plan in plans:
        if plan.fiscal_year > current:
            continue
        starts = {session.session_id: session.starts_at for session in plan.sessions}

        def happened(completion: Completion, starts: dict[str, datetime] = starts) -> bool:
            started = starts.get(completion.session_id)
            return completion.occurred_at <= now and (started is None or started <= now)

        clipped.append(
            replace(
                plan,
                promoter_completions=[c for c in plan.promoter_completions if happened(c)],
                baseline_completions=[c for c in plan.baseline_completions if happened(c)],
                late_for_previous_year=[c for c in plan.late_for_previous_year if c.occurred_at <= now],
                unmatched=plan.unmatched if plan.sessions and plan.sessions[0].starts_at <= now else [],
            )
        )
    return clipped
