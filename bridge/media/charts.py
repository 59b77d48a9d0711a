"""The `!stats` chart: the daily median reply time as bars and the share within target
as a line, drawn with Pillow as an 800×400 PNG."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw, ImageFont

from bridge.core.figures import ResponseFigures
from bridge.core.stats import Chart

WIDTH, HEIGHT = 800, 400
LEFT, RIGHT, TOP, BOTTOM = 72, 72, 56, 56
BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
GRID = (225, 225, 225)
BAR = (76, 120, 200)
SHARE = (40, 160, 90)
TARGET = (210, 50, 50)
MAX_DATE_LABELS = 10

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about `ticks` ticks."""
    raw = span / ticks
    power: float = 10.0 ** math.floor(math.log10(raw))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= raw)


def _vertical_text(image: Image.Image, xy: tuple[int, int], text: str, font: Font) -> None:
    """Text turned a quarter, centred on `xy` (an axis title)."""
    box = font.getbbox(text)
    label = Image.new("RGBA", (int(box[2]) + 4, int(box[3]) + 4), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((2, 0), text, fill=INK, font=font)
    turned = label.rotate(90, expand=True)
    image.paste(turned, (xy[0] - turned.width // 2, xy[1] - turned.height // 2), turned)


def _dashed(draw: ImageDraw.ImageDraw, y: float, x0: float, x1: float) -> None:
    x = x0
    while x < x1:
        draw.line([(x, y), (min(x + 8, x1), y)], fill=TARGET, width=2)
        x += 14


def _legend(draw: ImageDraw.ImageDraw, font: Font, target_hours: float) -> None:
    """Under the title: what the bars, the line and the dashes are."""
    x = LEFT
    draw.rectangle([x, 34, x + 12, 44], fill=BAR)
    draw.text((x + 18, 39), "median reply time", fill=INK, font=font, anchor="lm")
    draw.line([(x + 170, 39), (x + 190, 39)], fill=SHARE, width=3)
    draw.text((x + 196, 39), "share within target", fill=INK, font=font, anchor="lm")
    _dashed(draw, 39, x + 350, x + 380)
    draw.text((x + 386, 39), f"target ({target_hours:g} h)", fill=INK, font=font, anchor="lm")


def paint_chart(figures: ResponseFigures) -> Chart:
    """Bars: the day's median reply time in hours (left axis), with the target dashed;
    line: the day's share answered within the target (right axis, 0–100 %)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    title_font = ImageFont.load_default(size=16)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    target_hours = figures.target_seconds / 3600
    medians = [d.median_seconds / 3600 for d in figures.per_day if d.median_seconds is not None]
    top_hours = max([target_hours * 1.25, *(m * 1.1 for m in medians)])
    step = _nice_step(top_hours)
    top_hours = math.ceil(top_hours / step) * step

    def y_hours(hours: float) -> float:
        return y1 - (y1 - y0) * hours / top_hours

    def y_share(share: float) -> float:
        return y1 - (y1 - y0) * share

    draw.text(
        (WIDTH / 2, 8),
        f"Reply time and share within {target_hours:g} h, last {figures.days} days",
        fill=INK,
        font=title_font,
        anchor="mt",
    )
    _legend(draw, font, target_hours)

    ticks = round(top_hours / step)
    for tick in range(ticks + 1):
        hours = tick * step
        y = y_hours(hours)
        draw.line([(x0, y), (x1, y)], fill=GRID)
        draw.text((x0 - 6, y), f"{hours:g}", fill=INK, font=font, anchor="rm")
    for percent in range(0, 101, 25):
        draw.text(
            (x1 + 6, y_share(percent / 100)), f"{percent} %", fill=SHARE, font=font, anchor="lm"
        )
    draw.line([(x0, y0), (x0, y1), (x1, y1), (x1, y0)], fill=INK)
    _vertical_text(image, (18, (y0 + y1) // 2), "median reply time (hours)", font)
    _vertical_text(image, (WIDTH - 14, (y0 + y1) // 2), "answered within target (%)", font)

    days = figures.per_day
    slot = (x1 - x0) / max(len(days), 1)
    every = max(1, math.ceil(len(days) / MAX_DATE_LABELS))
    line: list[tuple[float, float]] = []
    for index, day in enumerate(days):
        left = x0 + index * slot
        middle = left + slot / 2
        if day.median_seconds is not None:
            pad = slot * 0.15
            top = min(y_hours(day.median_seconds / 3600), y1 - 1)
            draw.rectangle([left + pad, top, left + slot - pad, y1 - 1], fill=BAR)
        if day.within_target is not None:
            line.append((middle, y_share(day.within_target)))
        if index % every == 0 or index == len(days) - 1:
            draw.line([(middle, y1), (middle, y1 + 4)], fill=INK)
            draw.text((middle, y1 + 6), day.day.strftime("%d.%m"), fill=INK, font=font, anchor="mt")
    _dashed(draw, y_hours(target_hours), x0, x1)
    draw.text(
        (x0 + 4, y_hours(target_hours) - 3),
        f"target {target_hours:g} h",
        fill=TARGET,
        font=font,
        anchor="lb",
    )
    if len(line) > 1:
        draw.line(line, fill=SHARE, width=3)
    for x, y in line:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=SHARE)
    draw.text((WIDTH / 2, HEIGHT - 8), "day the buyer wrote", fill=INK, font=font, anchor="mb")
    if not medians:
        draw.text(
            ((x0 + x1) / 2, (y0 + y1) / 2),
            "no replies in this period",
            fill=INK,
            font=title_font,
            anchor="mm",
        )

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return Chart(out.getvalue(), WIDTH, HEIGHT)
