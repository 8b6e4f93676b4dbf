"""Synthetic DVCQG export records (the shape `chiso dossiers import` reads) for benchmarks.

A month of one province's dossiers: real communes (the unit registry), receipts in working hours, due
dates from the shared calendar, ~15 % with a processing supplement, ~8 % late, ~30 % online with most fees
paid online, results delivered after processing. Seeded: the same arguments give the same file.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from eventkit.units import UnitRegistry
from eventkit.worktime import VN_TZ, WorkingCalendar

__all__ = ["records", "write_jsonl"]

_PROCEDURES = [("1.001193", 3), ("2.000635", 1), ("1.001776", 5), ("1.003583", 10), ("2.001157", 7)]


def _stamp(t: datetime) -> str:
    return t.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")


def records(n: int, *, province: str = "01", seed: int = 7, start: datetime | None = None) -> Iterator[dict[str, Any]]:
    """``n`` export records of ``province``'s communes."""
    rng = random.Random(seed)
    calendar = WorkingCalendar.load()
    communes = [u.code for u in UnitRegistry.load().communes_of(province)]
    t0 = start or datetime(2026, 3, 2, 7, 0, tzinfo=VN_TZ)
    for i in range(n):
        unit = communes[i % len(communes)]
        received = calendar.add_working_hours(t0, rng.uniform(0, 8 * 20))
        ma_tthc, days = rng.choice(_PROCEDURES)
        due = calendar.due_at(received, days, "working_days")
        online = rng.random() < 0.3
        record: dict[str, Any] = {
            "MaHoSo": f"{unit}-{i:08d}",
            "MaTTHC": ma_tthc,
            "ChuHoSo": f"Người Giả Định {i}",
            "LoaiDoiTuong": 1,
            "MaDoiTuong": f"0010990{i:05d}"[-12:],
            "NgayTiepNhan": _stamp(received),
            "NgayHenTra": _stamp(due),
            "DonViXuLy": f"000.{int(unit) % 100:02d}.01.H26",
            "MaDVHC": unit,
            "ThoiGianGiaiQuyet": days,
            "DonViTinh": "Ngày làm việc",
            "KenhThucHien": 2 if online else 1,
            "TaiKhoanDuocXacThucVoiVNeID": 1 if online else 0,
            "TaiLieuNop": [{"MaThanhPhanHoSo": f"{ma_tthc}-TP1", "DuocSoHoa": 1, "DuocLayTuKhoDMQG": 0}],
            "DanhSachLePhi": [],
            "DanhSachHoSoBoSung": [],
            "DanhSachGiayToKetQua": [],
        }
        if online:
            record["NgayNopHoSo"] = _stamp(received - timedelta(hours=rng.uniform(1, 30)))
        elapsed = calendar.working_hours_between(received, due)
        back = None
        if rng.random() < 0.15:
            asked = calendar.add_working_hours(received, elapsed * 0.3)
            back = calendar.add_working_hours(asked, rng.uniform(2, 16))
            record["DanhSachHoSoBoSung"] = [
                {
                    "HoSoBoSungId": "1",
                    "NoiDungBoSung": "Bổ sung giấy tờ",
                    "NgayBoSung": _stamp(asked),
                    "NgayTiepNhanBoSung": _stamp(back),
                }
            ]
            elapsed += calendar.working_hours_between(asked, back)
        late = rng.random() < 0.08
        share = rng.uniform(1.05, 1.6) if late else rng.uniform(0.2, 0.98)
        finished = calendar.add_working_hours(received, elapsed * share)
        if back is not None and finished <= back:  # processing goes on after the applicant is back
            finished = calendar.add_working_hours(back, rng.uniform(0.5, 4))
        if rng.random() < 0.4:
            record["DanhSachLePhi"] = [{"TenPhiLePhi": "Lệ phí", "MaPhiLePhi": "LP1", "Gia": 50000}]
            record["DuocThanhToanTrucTuyen"] = 1 if online and rng.random() < 0.8 else 0
        record["NgayKetThucXuLy"] = _stamp(finished)
        if rng.random() < 0.9:
            record["NgayTra"] = _stamp(calendar.add_working_hours(finished, rng.uniform(0.5, 8)))
            record["HinhThuc"] = 0
            record["TrangThaiHoSo"] = 10
        else:
            record["TrangThaiHoSo"] = 9
        yield record


def write_jsonl(path: Path, n: int, *, province: str = "01", seed: int = 7, start: datetime | None = None) -> Path:
    """Write ``n`` records to ``path`` (JSON lines); ``start``: the first receipts (default 2 March 2026)."""
    with path.open("w", encoding="utf-8") as out:
        for record in records(n, province=province, seed=seed, start=start):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
