"""Synthetic Chinese names for communities, grids and micro-grids.

The names are invented: they sound like a Zhejiang coastal city but do not describe real places.
"""

from __future__ import annotations

COMMUNITY_NAMES = (
    "江滨",
    "龙翔",
    "海城",
    "新港",
    "鳌滨",
    "望海",
    "临港",
    "东塘",
    "西河",
    "南湖",
    "北岸",
    "华中",
    "兴港",
    "富民",
    "瑞丰",
    "文昌",
    "锦湖",
    "平安",
    "和美",
    "青龙",
    "金沙",
    "银杏",
    "云岩",
    "梅园",
    "桂苑",
    "荷塘",
)

# Exclusive grids, in the order they are handed out: kind, then the facility names to cycle.
EXCLUSIVE_FACILITIES: dict[str, tuple[str, ...]] = {
    "industrial_park": ("工业园区", "新材料产业园", "印刷包装产业园", "小微企业园", "物流园区"),
    "school": ("实验中学", "第二小学", "职业技术学校", "外国语学校"),
    "hospital": ("人民医院", "中医院", "妇幼保健院"),
    "market": ("农贸市场", "水产批发市场", "综合市场"),
}

_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1 -> 一, 10 -> 十, 21 -> 二十一, 105 -> 一百零五 (enough for grid numbering)."""
    if not 0 < n < 1000:
        raise ValueError(f"out of range: {n}")
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    text = ""
    if hundreds:
        text += _DIGITS[hundreds] + "百"
        if rest and tens == 0:
            text += "零"
    if tens:
        # 十一 rather than 一十一, except after a hundreds digit (一百一十).
        text += ("" if tens == 1 and not hundreds else _DIGITS[tens]) + "十"
    if ones:
        text += _DIGITS[ones]
    return text


def community_name(index: int) -> str:
    return f"{COMMUNITY_NAMES[index]}社区"


def full_grid_name(community_index: int, number: int) -> str:
    return f"{COMMUNITY_NAMES[community_index]}社区第{chinese_number(number)}网格"


def exclusive_grid_name(community_index: int, facility: str) -> str:
    return f"{COMMUNITY_NAMES[community_index]}{facility}专属网格"


def micro_grid_name(grid_name: str, number: int) -> str:
    return f"{grid_name}{number}号微网格"
