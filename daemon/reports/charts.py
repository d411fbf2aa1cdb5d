"""The monthly indicators drawn as PNG pictures for the coordinators' mail (matplotlib;
the same figures as the workbook's own charts, which mail clients cannot show). Each
picture's title names the month, and each comes with the text a mail client reads out
or shows instead of it (the alt text): what it shows, with its figures."""

from __future__ import annotations

import io
from dataclasses import dataclass

from daemon.reports.sheets import spanish_month


@dataclass(frozen=True)
class Picture:
    name: str  # the attachment's file name and Content-ID
    png: bytes
    description: str  # the alt text


def _number(value: float) -> str:
    return f"{value:g}".replace(".", ",")  # Spanish decimals: 4,5


def _described(what: str, figures: list[str]) -> str:
    """"Gráfico de barras de <what>. A: 1; B: 2." """
    listed = "; ".join(figures)
    return f"Gráfico de barras de {what}. {listed[:1].upper()}{listed[1:]}."


def bar_figure(title: str, labels: list[str], series: dict[str, list[float]], ylabel: str,
               top: float | None = None):
    """Bars from zero; counts on whole numbers, or up to `top` for a score. The caller
    closes the figure (matplotlib.pyplot.close)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen on a server
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    width = 0.8 / max(len(series), 1)
    for index, (name, values) in enumerate(series.items()):
        positions = [x + index * width - 0.4 + width / 2 for x in range(len(labels))]
        bars = axes.bar(positions, values, width, label=name)
        axes.bar_label(bars, labels=[_number(v) for v in values])
    axes.set_xticks(range(len(labels)), labels)
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    if top is None:
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylim(bottom=0, top=max(1, *(max(v) for v in series.values())) * 1.15)
    else:
        axes.set_ylim(0, top)
    if len(series) > 1:
        axes.legend()
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return figure


def _picture(name: str, description: str, title: str, *args, **options) -> Picture:
    """The chart as a PNG whose own metadata repeat its title and description."""
    import matplotlib.pyplot as plt

    figure = bar_figure(title, *args, **options)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png",
                   metadata={"Title": title, "Description": description})
    plt.close(figure)
    return Picture(name, buffer.getvalue(), description)


def _plural(count: float, one: str, many: str) -> str:
    return f"{_number(count)} {one if count == 1 else many}"


def monthly_charts(month) -> list[Picture]:
    """The pictures for a daemon.reports.workbooks.MonthlyIndicators: only those with
    something to show."""
    period = spanish_month(month.month)
    pictures = []
    categories = sorted(month.categories.items())
    if categories:
        pictures.append(_picture(
            "categorias.png",
            _described(f"las consultas recibidas por categoría en {period}",
                       [f"{name}: {_plural(count, 'consulta', 'consultas')}"
                        for name, count in categories]),
            f"Consultas recibidas por categoría, {period}", [name for name, _ in categories],
            {"Consultas": [count for _, count in categories]}, "Consultas"))
    levels = list(month.levels.items())
    if month.received:
        pictures.append(_picture(
            "niveles.png",
            _described(f"las consultas recibidas y resueltas por nivel en {period}", [
                f"{name}: {_plural(v['received'], 'recibida', 'recibidas')} y "
                f"{_plural(v['resolved'], 'resuelta', 'resueltas')}" for name, v in levels]),
            f"Consultas recibidas y resueltas por nivel, {period}",
            [name for name, _ in levels],
            {"Recibidas": [v["received"] for _, v in levels],
             "Resueltas": [v["resolved"] for _, v in levels]}, "Consultas"))
    incidents = month.incidents
    if incidents.total:
        outcomes = {("Segundo nivel", "resueltas en el segundo nivel"):
                    incidents.resolved_level_2,
                    ("Tercer nivel", "resueltas en el tercer nivel"): incidents.resolved_level_3,
                    ("Req. funcional", "requerimientos funcionales"):
                    incidents.functional_requirements,
                    ("En proceso", "en proceso"): incidents.in_process}
        pictures.append(_picture(
            "incidencias.png",
            _described(f"las {_plural(incidents.total, 'incidencia', 'incidencias')} "
                       f"reportadas en {period}, por resultado",
                       [f"{spoken}: {_number(count)}"
                        for (_, spoken), count in outcomes.items()]),
            f"Incidencias por resultado, {period}", [label for label, _ in outcomes],
            {"Incidencias": list(outcomes.values())}, "Incidencias"))
    if month.satisfaction:
        names = sorted(month.satisfaction)
        pictures.append(_picture(
            "satisfaccion.png",
            _described(f"el puntaje promedio de las encuestas de satisfacción (de 1 a 5) por "
                       f"categoría en {period}",
                       [f"{name}: {_number(month.satisfaction[name])}" for name in names]),
            f"Satisfacción por categoría (1 a 5), {period}", names,
            {"Puntaje promedio": [month.satisfaction[name] for name in names]}, "Puntaje",
            top=5))
    return pictures
